package http1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fastSweep makes connections park after 20ms for one test.
func fastSweep(t *testing.T) {
	parkAfter.Store(int64(20 * time.Millisecond))
	sweepEvery.Store(int64(10 * time.Millisecond))
	t.Cleanup(func() {
		parkAfter.Store(int64(parkAfterDefault))
		sweepEvery.Store(int64(sweepEveryDefault))
	})
}

// waitState waits until every connection of s is in state want.
func waitState(t *testing.T, s *Server, want int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		all := len(s.conns) > 0
		for c := range s.conns {
			all = all && c.state.Load() == want
		}
		s.mu.Unlock()
		if all {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("connections never reached state %d", want)
}

// TestParkedConnectionServesOn parks idle keep-alive connections and
// sends more requests on them: plain, with a body, and two pipelined.
func TestParkedConnectionServesOn(t *testing.T) {
	fastSweep(t)
	s, addr := start(t, echo)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	send := func(raw string, bodies ...string) {
		t.Helper()
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		for _, want := range bodies {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("after %q: %v", raw, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != want {
				t.Fatalf("after %q: %d %q, want 200 %q", raw, resp.StatusCode, b, want)
			}
		}
	}
	send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n", "")
	for _, tc := range []struct{ raw, body string }{
		{"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n", ""},
		{"POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "hello"},
		{"POST /4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "abc"},
	} {
		waitState(t, s, stateParked)
		send(tc.raw, tc.body)
	}
	waitState(t, s, stateParked)
	send("POST /5 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /6 HTTP/1.1\r\nHost: a\r\n\r\n", "hi", "")
	// A head that comes in pieces after parking.
	waitState(t, s, stateParked)
	for _, part := range []string{"G", "ET /7 HTTP/1.1\r\n", "Host: a\r\n", "\r\n"} {
		send(part)
		time.Sleep(5 * time.Millisecond)
	}
	send("", "")
}

// TestIdleTimeoutClosesParked: a parked connection is still closed at
// IdleTimeout, and Shutdown closes parked connections at once.
func TestIdleTimeoutClosesParked(t *testing.T) {
	fastSweep(t)
	for _, tc := range []struct {
		name     string
		idle     time.Duration
		shutdown bool
	}{
		{name: "idle timeout", idle: 100 * time.Millisecond},
		{name: "shutdown", idle: time.Minute, shutdown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			s := &Server{Handler: echo, IdleTimeout: tc.idle}
			defer s.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go s.ServeConn(context.Background(), c, nil)
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			// Timed from before the request: the connection's last
			// activity, its response, comes after.
			start := time.Now()
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			if _, err := http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			}
			if tc.shutdown {
				waitState(t, s, stateParked)
				s.Shutdown()
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("read after the response: %v, want EOF", err)
			}
			if !tc.shutdown && time.Since(start) < tc.idle {
				t.Fatalf("closed after %v, before the idle timeout %v", time.Since(start), tc.idle)
			}
		})
	}
}

// TestHeaderTimeoutAfterFirstByte: a head that stops coming is cut off
// at ReadHeaderTimeout, though a head that comes whole sets no deadline.
func TestHeaderTimeoutAfterFirstByte(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := &Server{Handler: echo, ReadHeaderTimeout: 50 * time.Millisecond}
	defer s.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(context.Background(), c, nil)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // idle past the header timeout: fine
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b, err := br.ReadString('\n')
	if err != io.EOF || strings.TrimSpace(b) != "" {
		t.Fatalf("slow head: read %q, %v; want the connection closed", b, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("slow head cut off after %v", d)
	}
}
