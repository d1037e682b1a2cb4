package listener

import (
	"net/netip"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

func TestSelectChain(t *testing.T) {
	pfx := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	tlsFrom := func(sni string, alpn ...string) connFacts {
		return connFacts{
			dst:       netip.MustParseAddrPort("10.0.0.1:443"),
			src:       netip.MustParseAddrPort("192.168.1.7:50000"),
			direct:    netip.MustParseAddr("192.168.1.7"),
			sni:       sni,
			transport: "tls",
			alpn:      alpn,
		}
	}
	plain := func(dst, src string) connFacts {
		d, s := netip.MustParseAddrPort(dst), netip.MustParseAddrPort(src)
		return connFacts{dst: d, src: s, direct: s.Addr(), transport: "raw_buffer"}
	}
	tests := []struct {
		name   string
		chains []chainMatch
		facts  connFacts
		want   string // chain name, "" for no match
	}{
		{
			name:   "destination port picks the chain for that port",
			chains: []chainMatch{{dstPort: 80}, {dstPort: 443}},
			facts:  tlsFrom("a.example.com"),
			want:   "1",
		},
		{
			name:   "a chain for the port beats a chain without one",
			chains: []chainMatch{{}, {dstPort: 443}},
			facts:  tlsFrom(""),
			want:   "1",
		},
		{
			name:   "other port falls back to the chain without one",
			chains: []chainMatch{{}, {dstPort: 8443}},
			facts:  tlsFrom(""),
			want:   "0",
		},
		{
			name:   "no chain for the port",
			chains: []chainMatch{{dstPort: 80}},
			facts:  tlsFrom(""),
			want:   "",
		},
		{
			name:   "longest destination prefix wins",
			chains: []chainMatch{{dstPrefixes: pfx("10.0.0.0/8")}, {dstPrefixes: pfx("10.0.0.0/24")}, {}},
			facts:  tlsFrom(""),
			want:   "1",
		},
		{
			name:   "exact server name beats a wildcard",
			chains: []chainMatch{{serverNames: []string{"*.example.com"}}, {serverNames: []string{"a.example.com"}}},
			facts:  tlsFrom("a.example.com"),
			want:   "1",
		},
		{
			name:   "server names match case-insensitively",
			chains: []chainMatch{{serverNames: []string{"*.example.com"}}, {serverNames: []string{"A.Example.com"}}},
			facts:  tlsFrom("a.EXAMPLE.com"),
			want:   "1",
		},
		{
			name:   "wildcard matches other names of the domain",
			chains: []chainMatch{{serverNames: []string{"*.example.com"}}, {serverNames: []string{"a.example.com"}}},
			facts:  tlsFrom("b.example.com"),
			want:   "0",
		},
		{
			name:   "longer wildcard beats a shorter one",
			chains: []chainMatch{{serverNames: []string{"*.com"}}, {serverNames: []string{"*.b.example.com"}}, {serverNames: []string{"*.example.com"}}},
			facts:  tlsFrom("a.b.example.com"),
			want:   "1",
		},
		{
			name:   "wildcard does not match the bare domain",
			chains: []chainMatch{{serverNames: []string{"*.example.com"}}, {}},
			facts:  tlsFrom("example.com"),
			want:   "1",
		},
		{
			name:   "unknown server name falls back to the chain without names",
			chains: []chainMatch{{serverNames: []string{"a.example.com"}}, {}},
			facts:  tlsFrom("c.example.org"),
			want:   "1",
		},
		{
			name:   "unknown server name and no fallback",
			chains: []chainMatch{{serverNames: []string{"a.example.com"}}},
			facts:  tlsFrom("c.example.org"),
			want:   "",
		},
		{
			name:   "no SNI matches only chains without names",
			chains: []chainMatch{{serverNames: []string{"*.example.com"}}, {transport: "tls"}},
			facts:  tlsFrom(""),
			want:   "1",
		},
		{
			name:   "server name is decided before transport protocol",
			chains: []chainMatch{{transport: "tls"}, {serverNames: []string{"a.example.com"}}},
			facts:  tlsFrom("a.example.com"),
			want:   "1",
		},
		{
			name:   "tls connection picks the tls chain",
			chains: []chainMatch{{transport: "raw_buffer"}, {transport: "tls"}},
			facts:  tlsFrom(""),
			want:   "1",
		},
		{
			name:   "plaintext connection picks the raw_buffer chain",
			chains: []chainMatch{{transport: "tls"}, {transport: "raw_buffer"}},
			facts:  plain("10.0.0.1:80", "192.168.1.7:5000"),
			want:   "1",
		},
		{
			name:   "plaintext connection falls back to a chain without transport",
			chains: []chainMatch{{transport: "tls"}, {}},
			facts:  plain("10.0.0.1:80", "192.168.1.7:5000"),
			want:   "1",
		},
		{
			name:   "plaintext connection with only a tls chain",
			chains: []chainMatch{{transport: "tls"}},
			facts:  plain("10.0.0.1:80", "192.168.1.7:5000"),
			want:   "",
		},
		{
			name:   "the client's preferred application protocol wins",
			chains: []chainMatch{{alpn: []string{"http/1.1"}}, {alpn: []string{"h2"}}},
			facts:  tlsFrom("", "h2", "http/1.1"),
			want:   "1",
		},
		{
			name:   "the client's preference, whatever the chain order",
			chains: []chainMatch{{alpn: []string{"h2"}}, {alpn: []string{"http/1.1"}}},
			facts:  tlsFrom("", "http/1.1", "h2"),
			want:   "1",
		},
		{
			name:   "application protocol picks the only offered one",
			chains: []chainMatch{{alpn: []string{"http/1.1"}}, {alpn: []string{"h2"}}},
			facts:  tlsFrom("", "h2"),
			want:   "1",
		},
		{
			name:   "a chain naming the protocol beats one without",
			chains: []chainMatch{{}, {alpn: []string{"istio-peer-exchange", "istio"}}},
			facts:  tlsFrom("", "istio", "h2"),
			want:   "1",
		},
		{
			name:   "no ALPN falls back to the chain without protocols",
			chains: []chainMatch{{alpn: []string{"h2"}}, {}},
			facts:  tlsFrom(""),
			want:   "1",
		},
		{
			name:   "longest source prefix wins",
			chains: []chainMatch{{srcPrefixes: pfx("192.168.0.0/16")}, {srcPrefixes: pfx("192.168.1.0/24")}, {}},
			facts:  tlsFrom(""),
			want:   "1",
		},
		{
			name:   "source outside every prefix falls back",
			chains: []chainMatch{{srcPrefixes: pfx("172.16.0.0/12")}, {}},
			facts:  tlsFrom(""),
			want:   "1",
		},
		{
			name:   "source outside every prefix and no fallback",
			chains: []chainMatch{{srcPrefixes: pfx("172.16.0.0/12")}},
			facts:  tlsFrom(""),
			want:   "",
		},
		{
			name:   "IPv4-mapped source matches an IPv4 prefix",
			chains: []chainMatch{{srcPrefixes: pfx("127.0.0.0/8")}},
			facts:  plain("[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:5000"),
			want:   "0",
		},
		{
			name:   "direct source prefix",
			chains: []chainMatch{{direct: pfx("10.1.0.0/16")}, {direct: pfx("192.168.1.7/32")}},
			facts:  tlsFrom(""),
			want:   "1",
		},
		{
			name:   "loopback source type",
			chains: []chainMatch{{sourceType: listenerv3.FilterChainMatch_EXTERNAL}, {sourceType: listenerv3.FilterChainMatch_SAME_IP_OR_LOOPBACK}},
			facts:  plain("127.0.0.1:80", "127.0.0.1:5000"),
			want:   "1",
		},
		{
			name:   "external source type",
			chains: []chainMatch{{sourceType: listenerv3.FilterChainMatch_SAME_IP_OR_LOOPBACK}, {sourceType: listenerv3.FilterChainMatch_EXTERNAL}},
			facts:  plain("10.0.0.1:80", "192.168.1.7:5000"),
			want:   "1",
		},
		{
			name:   "source port",
			chains: []chainMatch{{srcPorts: []uint32{4000}}, {srcPorts: []uint32{5000, 5001}}, {}},
			facts:  plain("10.0.0.1:80", "192.168.1.7:5001"),
			want:   "1",
		},
		{
			name:   "earlier criteria decide before later ones",
			chains: []chainMatch{{dstPort: 443, srcPrefixes: pfx("172.16.0.0/12")}, {srcPrefixes: pfx("192.168.1.0/24")}},
			facts:  tlsFrom(""),
			want:   "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chains []*chain
			for i, m := range tt.chains {
				chains = append(chains, &chain{name: string(rune('0' + i)), match: m})
			}
			f := tt.facts
			got := ""
			if c := selectChain(chains, &f); c != nil {
				got = c.name
			}
			if got != tt.want {
				t.Errorf("selected chain %q, want %q", got, tt.want)
			}
		})
	}
}
