package backend

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// reservedFloor is the lowest port FreePort hands out: the fixed ports of
// the bundled example (8080, 15000, 19080 to 19091) lie below it.
const reservedFloor = 20000

// handedOut holds the ports this process's FreePort returned, so that two
// servers of one test never get the same port before either binds it.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort is a TCP port nothing listens on, on any local address, for a
// server a test starts in another process (the gateway's listeners, its
// admin server, redis-server).
//
// The port is taken from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), not from a listener on port 0. A port
// the kernel handed out and that was closed again goes back to the
// ephemeral pool, where the gateway's own servers on port 0 and every
// outgoing connection draw from, and the server the test meant it for
// then fails to bind it now and then. Below the range, only another
// caller of FreePort could pick it, at random among some 12,000 ports.
// When the range starts too low to leave room, the kernel picks.
func FreePort() (int, error) {
	lo := ephemeralFloor()
	if lo-reservedFloor < 1000 {
		return kernelPort()
	}
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 200 {
		p := reservedFloor + rand.IntN(lo-reservedFloor)
		if handedOut.ports[p] || !bindable(p) {
			continue
		}
		handedOut.ports[p] = true
		return p, nil
	}
	return kernelPort()
}

// ClosedAddr is a loopback address nothing listens on, so connecting to
// it is refused. Tests use it as an upstream that is down.
func ClosedAddr() (string, error) {
	p, err := FreePort()
	if err != nil {
		return "", fmt.Errorf("closed address: %w", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// bindable reports whether a listener can take port p on every address:
// the dual-stack wildcard conflicts with a listener on any one of them.
func bindable(p int) bool {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// kernelPort is a port the kernel picks for a listener on port 0.
func kernelPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralFloor is the first port of the kernel's ephemeral range, or 0
// when the system does not say (FreePort then lets the kernel pick).
func ephemeralFloor() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}
