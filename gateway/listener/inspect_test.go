package listener

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// clientHello returns the first flight a Go TLS client sends for sni and
// alpn, captured off a pipe.
func clientHello(t testing.TB, sni string, alpn ...string) []byte {
	t.Helper()
	c, s := net.Pipe()
	go func() {
		_ = tls.Client(c, &tls.Config{ServerName: sni, NextProtos: alpn, InsecureSkipVerify: true}).Handshake()
	}()
	defer c.Close()
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(2 * time.Second))
	var hdr [5]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(s, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr[:], body...)
}

func TestInspect(t *testing.T) {
	hello := clientHello(t, "a.example.com", "h2", "http/1.1")
	tests := []struct {
		name      string
		data      []byte
		sniff     bool // as with an http_inspector
		transport string
		sni       string
		alpn      []string
	}{
		{name: "plaintext HTTP", data: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), transport: "raw_buffer"},
		{name: "HTTP/2 preface", data: []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), transport: "raw_buffer"},
		{name: "TLS ClientHello", data: hello, transport: "tls", sni: "a.example.com", alpn: []string{"h2", "http/1.1"}},
		{name: "HTTP/1.1 request line", data: []byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), sniff: true, transport: "raw_buffer", alpn: []string{"http/1.1"}},
		{name: "HTTP/1.0 request line", data: []byte("POST / HTTP/1.0\n\n"), sniff: true, transport: "raw_buffer", alpn: []string{"http/1.0"}},
		{name: "HTTP/2 prior knowledge", data: []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"), sniff: true, transport: "raw_buffer", alpn: []string{"h2c"}},
		{name: "not HTTP", data: []byte("hello there\n"), sniff: true, transport: "raw_buffer"},
		{name: "not HTTP, no newline", data: []byte("\x00\x01binary"), sniff: true, transport: "raw_buffer"},
		{name: "TLS record that is not a ClientHello", data: []byte{0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00}, transport: "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := net.Pipe()
			defer c.Close()
			go func() {
				c.Write(tt.data)
				// Keep the client side open: inspection must not need EOF.
			}()
			var f connFacts
			got, err := inspect(s, &f, inspection{timeout: 2 * time.Second, sniffHTTP: tt.sniff})
			if err != nil {
				t.Fatalf("inspect: %v", err)
			}
			if f.transport != tt.transport || f.sni != tt.sni || !equalStrings(f.alpn, tt.alpn) {
				t.Errorf("facts = %q %q %q, want %q %q %q", f.transport, f.sni, f.alpn, tt.transport, tt.sni, tt.alpn)
			}
			// The bytes inspection read are replayed first.
			buf := make([]byte, len(tt.data))
			_ = got.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadFull(got, buf); err != nil {
				t.Fatalf("replay: %v", err)
			}
			if !bytes.Equal(buf, tt.data) {
				t.Errorf("replayed %q, want %q", buf, tt.data)
			}
		})
	}
}

func TestInspectTimesOut(t *testing.T) {
	tests := []struct {
		name    string
		sent    []byte
		cont    bool
		wantErr bool
		want    string // transport
	}{
		{name: "silent client", wantErr: true},
		{name: "silent client, continue on timeout", cont: true, want: "raw_buffer"},
		{name: "half a TLS record", sent: []byte{0x16, 0x03, 0x01, 0x02, 0x00}, want: "tls"},
		{name: "half a request line", sent: []byte("GET /slow"), want: "raw_buffer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := net.Pipe()
			defer c.Close()
			if tt.sent != nil {
				go c.Write(tt.sent)
			}
			var f connFacts
			start := time.Now()
			_, err := inspect(s, &f, inspection{timeout: 100 * time.Millisecond, continueOnTimeout: tt.cont, sniffHTTP: true})
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("inspect took %v with a 100ms timeout", d)
			}
			if (err != nil) != tt.wantErr || f.transport != tt.want {
				t.Errorf("error %v, transport %q; want error %v, transport %q", err, f.transport, tt.wantErr, tt.want)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzInspect feeds arbitrary first bytes to inspection: it must neither
// panic nor outlive its timeout, and what it hands on must start with
// what the client sent.
func FuzzInspect(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), true)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), true)
	f.Add([]byte("PRI * HTTP/2.0\r\n"), true)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), false)
	f.Add([]byte{0x16}, false)
	f.Add([]byte{0x16, 0x03, 0x01, 0xff, 0xff}, false)
	f.Add([]byte{0x16, 0x03, 0x03, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00}, false)
	f.Add(clientHello(f, "a.example.com", "h2"), false)
	f.Add(clientHello(f, ""), true)
	f.Fuzz(func(t *testing.T, data []byte, sniffHTTP bool) {
		c, s := net.Pipe()
		defer s.Close()
		go func() {
			c.Write(data)
			c.Close()
		}()
		var facts connFacts
		done := make(chan struct{})
		var got net.Conn
		var err error
		go func() {
			defer close(done)
			got, err = inspect(s, &facts, inspection{timeout: 50 * time.Millisecond, sniffHTTP: sniffHTTP})
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("inspect of %q did not return", data)
		}
		if err != nil {
			return
		}
		if facts.transport != "tls" && facts.transport != "raw_buffer" {
			t.Fatalf("transport %q", facts.transport)
		}
		_ = got.SetReadDeadline(time.Now().Add(time.Second))
		replay, _ := io.ReadAll(got)
		if !bytes.HasPrefix(data, replay) && !bytes.HasPrefix(replay, data) {
			t.Fatalf("replayed %q, sent %q", replay, data)
		}
	})
}
