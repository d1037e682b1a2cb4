package listener

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzProxyProtocol: whatever a client sends first, reading the PROXY
// header returns an error or a connection that reads on with the bytes
// after the header, and never panics.
func FuzzProxyProtocol(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.1 40000 443\r\nGET / HTTP/1.1\r\n\r\n"), true)
	f.Add([]byte("PROXY UNKNOWN\r\nrest"), false)
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x01\x9c\x40\x01\xbbrest"), false)
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x04\x00\x00"), true)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), true)
	f.Add([]byte("PROXY TCP6 ::1"), false)
	f.Fuzz(func(t *testing.T, data []byte, optional bool) {
		client, server := net.Pipe()
		go func() {
			client.Write(data)
			client.Close()
		}()
		defer server.Close()
		p := &proxyProtocol{optional: optional}
		var fc connFacts
		c, err := p.read(server, &fc, time.Now().Add(time.Second))
		if err != nil {
			return
		}
		rest, _ := io.ReadAll(c)
		if !bytes.HasSuffix(data, rest) {
			t.Fatalf("read on %q, not a suffix of %q", rest, data)
		}
	})
}
