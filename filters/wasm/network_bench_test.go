package wasm

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkNetworkPlugin measures one 1 KiB round trip through a real
// listener and tcp_proxy to a loopback echo backend: with no network
// filter, and with the test plugin upper-casing the data going up and
// rotating it coming back (two data callbacks, each reading and
// replacing the buffer). Run with
// go test ./filters/wasm -run '^$' -bench NetworkPlugin -benchtime 5000x
func BenchmarkNetworkPlugin(b *testing.B) {
	for _, bc := range []struct {
		name string
		gw   func(testing.TB) *tcpGateway
	}{
		{"tcp_proxy only", func(t testing.TB) *tcpGateway { return startTCPProxy(t) }},
		{"wasm reading", func(t testing.TB) *tcpGateway { return startTCPGateway(t, "") }},
		{"wasm upper rot13", func(t testing.TB) *tcpGateway { return startTCPGateway(t, "upper rot13") }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := bc.gw(b)
			c, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := bytes.Repeat([]byte("abcdefgh"), 128)
			got := make([]byte, len(msg))
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
