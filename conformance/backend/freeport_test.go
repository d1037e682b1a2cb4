package backend

import (
	"net"
	"strconv"
	"testing"
	"time"
)

func TestClosedAddr(t *testing.T) {
	addr, err := ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection", addr)
	}
}

// FreePort's ports lie below the ephemeral range, are bindable on every
// address, and are not handed out twice.
func TestFreePort(t *testing.T) {
	lo := ephemeralFloor()
	seen := map[int]bool{}
	for range 50 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if lo-reservedFloor >= 1000 && (p < reservedFloor || p >= lo) {
			t.Fatalf("port %d outside [%d, %d)", p, reservedFloor, lo)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		ln.Close()
	}
}
