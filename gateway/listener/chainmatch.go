package listener

import (
	"net/netip"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// connFacts is what filter chain matching looks at.
type connFacts struct {
	dst, src   netip.AddrPort
	direct     netip.Addr
	sni        string
	transport  string // "tls" or "raw_buffer"
	alpn       []string
	sourceType listenerv3.FilterChainMatch_ConnectionSourceType
}

// chainMatch is a compiled FilterChainMatch.
type chainMatch struct {
	dstPort     uint32 // 0: any
	dstPrefixes []netip.Prefix
	serverNames []string
	transport   string
	alpn        []string
	direct      []netip.Prefix
	sourceType  listenerv3.FilterChainMatch_ConnectionSourceType
	srcPrefixes []netip.Prefix
	srcPorts    []uint32
}

// needsInspection reports whether matching needs the TLS ClientHello.
func (m *chainMatch) needsInspection() bool {
	return len(m.serverNames) > 0 || m.transport != "" || len(m.alpn) > 0
}

// selectChain applies Envoy's filter chain match order: destination port,
// destination IP, server name, transport protocol, application protocols,
// direct source IP, source type, source IP, source port. At each step the
// most specific criterion that matches wins, and chains that leave the
// criterion empty match only when no specific one does.
// See https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/listener/v3/listener_components.proto#config-listener-v3-filterchainmatch
func selectChain(chains []*chain, f *connFacts) *chain {
	cands := chains
	steps := []func([]*chain) []*chain{
		func(cs []*chain) []*chain {
			return narrow(cs, func(c *chain) (bool, int) {
				if c.match.dstPort == 0 {
					return true, 0
				}
				return uint32(f.dst.Port()) == c.match.dstPort, 1
			})
		},
		func(cs []*chain) []*chain {
			return narrowPrefix(cs, f.dst.Addr(), func(c *chain) []netip.Prefix { return c.match.dstPrefixes })
		},
		func(cs []*chain) []*chain {
			return narrow(cs, func(c *chain) (bool, int) {
				if len(c.match.serverNames) == 0 {
					return true, 0
				}
				best := -1
				for _, n := range c.match.serverNames {
					if s := serverNameScore(n, f.sni); s > best {
						best = s
					}
				}
				return best >= 0, 1 + best
			})
		},
		func(cs []*chain) []*chain {
			return narrow(cs, func(c *chain) (bool, int) {
				if c.match.transport == "" {
					return true, 0
				}
				return c.match.transport == f.transport, 1
			})
		},
		func(cs []*chain) []*chain {
			return narrow(cs, func(c *chain) (bool, int) {
				if len(c.match.alpn) == 0 {
					return true, 0
				}
				// The client's order decides: Envoy takes the first
				// protocol the client offers that some chain names.
				for i, got := range f.alpn {
					for _, want := range c.match.alpn {
						if want == got {
							return true, 1 + len(f.alpn) - i
						}
					}
				}
				return false, 0
			})
		},
		func(cs []*chain) []*chain {
			return narrowPrefix(cs, f.direct, func(c *chain) []netip.Prefix { return c.match.direct })
		},
		func(cs []*chain) []*chain {
			return narrow(cs, func(c *chain) (bool, int) {
				switch c.match.sourceType {
				case listenerv3.FilterChainMatch_ANY:
					return true, 0
				case listenerv3.FilterChainMatch_SAME_IP_OR_LOOPBACK:
					a := f.src.Addr()
					return a.IsLoopback() || a == f.dst.Addr(), 1
				default:
					a := f.src.Addr()
					return !(a.IsLoopback() || a == f.dst.Addr()), 1
				}
			})
		},
		func(cs []*chain) []*chain {
			return narrowPrefix(cs, f.src.Addr(), func(c *chain) []netip.Prefix { return c.match.srcPrefixes })
		},
		func(cs []*chain) []*chain {
			return narrow(cs, func(c *chain) (bool, int) {
				if len(c.match.srcPorts) == 0 {
					return true, 0
				}
				for _, p := range c.match.srcPorts {
					if uint32(f.src.Port()) == p {
						return true, 1
					}
				}
				return false, 0
			})
		},
	}
	for _, step := range steps {
		cands = step(cands)
		if len(cands) == 0 {
			return nil
		}
	}
	return cands[0]
}

// narrow keeps the matching chains with the highest score.
func narrow(cs []*chain, score func(*chain) (bool, int)) []*chain {
	best := -1
	var out []*chain
	for _, c := range cs {
		ok, s := score(c)
		if !ok {
			continue
		}
		switch {
		case s > best:
			best = s
			out = append(out[:0:0], c)
		case s == best:
			out = append(out, c)
		}
	}
	return out
}

func narrowPrefix(cs []*chain, a netip.Addr, get func(*chain) []netip.Prefix) []*chain {
	return narrow(cs, func(c *chain) (bool, int) {
		ps := get(c)
		if len(ps) == 0 {
			return true, 0
		}
		best := -1
		for _, p := range ps {
			if a.IsValid() && p.Contains(a.Unmap()) && p.Bits() > best {
				best = p.Bits()
			}
		}
		return best >= 0, 1 + best
	})
}

// serverNameScore rates how well a server_names entry matches sni: -1 no
// match; an exact match beats any wildcard, and a longer wildcard suffix
// beats a shorter one.
func serverNameScore(pattern, sni string) int {
	pattern, sni = strings.ToLower(pattern), strings.ToLower(sni)
	if pattern == sni {
		return 1 << 20
	}
	if strings.HasPrefix(pattern, "*.") && strings.HasSuffix(sni, pattern[1:]) && len(sni) > len(pattern)-1 {
		return len(pattern)
	}
	return -1
}
