package hcm_test

import (
	"bufio"
	"bytes"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// The raw benchmarks drive the gateway with a client and a backend that
// write canned bytes and parse only the framing, allocating nothing per
// request: what -benchmem reports is the gateway's own cost, on the
// path plaintext HTTP/1.1 takes by default (gateway/http1 downstream,
// the pool's codec upstream).

// rawBody is the backend's response body: 1 KiB, as in the load
// harness's h1-1k scenario.
var rawBody = bytes.Repeat([]byte("x"), 1024)

// startRawBackend serves every request on a connection with the same
// 200 response carrying rawBody. Requests must have no body.
func startRawBackend(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "+strconv.Itoa(len(rawBody))+"\r\n\r\n"), rawBody...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 4096)
				for {
					if err := skipHead(br); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// skipHead reads one message head up to its empty line.
func skipHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

// rawClient is one keep-alive connection sending a canned request.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
	buf []byte
}

func dialRaw(tb testing.TB, addr, path string) *rawClient {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &rawClient{
		c:   c,
		br:  bufio.NewReaderSize(c, 4096),
		req: []byte("GET " + path + " HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: raw\r\nAccept: */*\r\n\r\n"),
		buf: make([]byte, 4096),
	}
}

// do sends the request and reads the response, returning its status
// and body length.
func (rc *rawClient) do() (status, n int, err error) {
	if _, err := rc.c.Write(rc.req); err != nil {
		return 0, 0, err
	}
	cl := -1
	first := true
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, 0, err
		}
		if first {
			first = false
			if len(line) >= 12 {
				status, _ = strconv.Atoi(string(line[9:12]))
			}
			continue
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
			cl, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
		}
	}
	if cl < 0 {
		return status, 0, errNoLength
	}
	for n < cl {
		m, err := rc.br.Read(rc.buf[:min(len(rc.buf), cl-n)])
		n += m
		if err != nil {
			return status, n, err
		}
	}
	return status, n, nil
}

var errNoLength = &net.AddrError{Err: "response without Content-Length"}

// BenchmarkRawEmptyChain is BenchmarkProxyEmptyChain without the
// client's and the backend's allocations: one request through the
// router alone, one keep-alive connection on each side, 1 KiB answers.
func BenchmarkRawEmptyChain(b *testing.B) {
	addr := startRawBackend(b)
	gw := hcmtest.Start(b, hcmtest.Options{
		HCM:      hcmtest.HCM(b, hcmtest.Routes(hcmtest.Prefix("/", "fast"))),
		Clusters: []*clusterv3.Cluster{hcmtest.StaticCluster("fast", addr)},
	})
	benchRaw(b, gw.Addr, "/")
}

// benchRaw sends b.N requests over one connection to addr.
func benchRaw(b *testing.B, addr, path string) {
	rc := dialRaw(b, addr, path)
	if st, n, err := rc.do(); err != nil || st != 200 || n != len(rawBody) {
		b.Fatalf("warm-up: status %d, %d bytes, %v", st, n, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		st, n, err := rc.do()
		if err != nil || st != 200 || n != len(rawBody) {
			b.Fatalf("status %d, %d bytes, %v", st, n, err)
		}
	}
}

// BenchmarkRawDirect is the client and backend alone: their allocations
// (none expected) and time, the floor under BenchmarkRawEmptyChain.
func BenchmarkRawDirect(b *testing.B) {
	benchRaw(b, startRawBackend(b), "/")
}

// idleConnBytes opens n keep-alive connections to a gateway, sends one
// request on each so that every connection holds what a used one keeps,
// and returns the heap and stack bytes the process holds per
// connection once they idle. The client side keeps only its net.Conn,
// a few hundred bytes of the figure.
func idleConnBytes(tb testing.TB, n int) float64 {
	addr := startRawBackend(tb)
	gw := hcmtest.Start(tb, hcmtest.Options{
		HCM:      hcmtest.HCM(tb, hcmtest.Routes(hcmtest.Prefix("/", "fast"))),
		Clusters: []*clusterv3.Cluster{hcmtest.StaticCluster("fast", addr)},
	})
	warm := dialRaw(tb, gw.Addr, "/")
	for range 10 {
		if _, _, err := warm.do(); err != nil {
			tb.Fatal(err)
		}
	}
	rc := &rawClient{br: bufio.NewReaderSize(nil, 4096), req: warm.req, buf: warm.buf}
	before := inUse()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", gw.Addr)
		if err != nil {
			tb.Fatal(err)
		}
		conns[i] = c
		rc.c = c
		rc.br.Reset(c)
		if st, _, err := rc.do(); err != nil || st != 200 || rc.br.Buffered() > 0 {
			tb.Fatalf("connection %d: status %d, %v", i, st, err)
		}
	}
	tb.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	// Past the time after which the gateway parks an idle connection
	// (see gateway/http1's idle.go).
	time.Sleep(2 * time.Second)
	after := inUse()
	runtime.KeepAlive(conns)
	return float64(after-before) / float64(n)
}

// inUse is the heap and goroutine stack memory in use after a
// collection; two collections let stacks of parked goroutines shrink.
func inUse() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkIdleConn reports the memory one idle keep-alive connection
// costs the gateway (and the raw client's side of it).
func BenchmarkIdleConn(b *testing.B) {
	b.ReportMetric(idleConnBytes(b, 1000), "B/conn")
}

// idleConnBudget is what an idle keep-alive connection may cost the
// gateway in heap and stack here. The target is 10 KiB of RSS per
// connection in the load harness's idle-10k scenario (7.1 measured);
// measured once in a fresh process, as here, the figure also carries
// the growth of the runtime's and the server's own tables: 6.5 KiB.
const idleConnBudget = 12 << 10

// TestIdleConnMemory holds 1,000 idle keep-alive connections, each used
// once, and checks their heap and stack cost against idleConnBudget: a
// connection that kept its buffers (8 KiB) or its serving goroutine's
// grown stack would exceed it.
func TestIdleConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the gateway to park idle connections")
	}
	if b := idleConnBytes(t, 1000); b > idleConnBudget {
		t.Fatalf("%.0f bytes per idle connection, budget %d", b, idleConnBudget)
	} else {
		t.Logf("%.0f bytes per idle connection", b)
	}
}
