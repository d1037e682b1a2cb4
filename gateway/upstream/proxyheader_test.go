package upstream

import (
	"context"
	"net"
	"net/netip"
	"testing"
)

// writeProxyHeader's output for each version and address family, and
// for a connection without a downstream (a health check).
func TestWriteProxyHeader(t *testing.T) {
	v4 := WithDownstream(context.Background(), netip.MustParseAddrPort("[::ffff:10.0.0.1]:5000"), netip.MustParseAddrPort("10.0.0.2:443"))
	v6 := WithDownstream(context.Background(), netip.MustParseAddrPort("[2001:db8::1]:5000"), netip.MustParseAddrPort("[2001:db8::2]:443"))
	sig := "\r\n\r\n\x00\r\nQUIT\n"
	for _, c := range []struct {
		name    string
		ctx     context.Context
		version uint8
		want    string
	}{
		{"v1 IPv4 (mapped)", v4, 1, "PROXY TCP4 10.0.0.1 10.0.0.2 5000 443\r\n"},
		{"v1 IPv6", v6, 1, "PROXY TCP6 2001:db8::1 2001:db8::2 5000 443\r\n"},
		{"v1 no downstream", context.Background(), 1, "PROXY UNKNOWN\r\n"},
		{"v2 IPv4", v4, 2, sig + "\x21\x11\x00\x0c" + "\x0a\x00\x00\x01" + "\x0a\x00\x00\x02" + "\x13\x88\x01\xbb"},
		{"v2 no downstream", context.Background(), 2, sig + "\x20\x00\x00\x00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			go func() { writeProxyHeader(c.ctx, a, c.version) }()
			got := make([]byte, len(c.want))
			if _, err := readFull(b, got); err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("header %q, want %q", got, c.want)
			}
		})
	}
	// v2 IPv6: 16 fixed bytes and 36 of addresses.
	a, b := net.Pipe()
	defer a.Close()
	go func() { writeProxyHeader(v6, a, 2) }()
	got := make([]byte, 52)
	if _, err := readFull(b, got); err != nil || got[13] != 0x21 || got[15] != 36 {
		t.Errorf("v2 IPv6 header %x, %v", got, err)
	}
}

func readFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
