package router

import (
	"fmt"
	"sort"
	"strings"
)

// domainIndex selects a virtual host by authority in Envoy's order
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#envoy-v3-api-field-config-route-v3-virtualhost-domains):
// exact domains, then suffix wildcards (*.foo.com, *-bar.foo.com) longest
// first, then prefix wildcards (foo.*) longest first, then "*". Wildcards
// never match the empty string. Domains are lower-cased; so is the
// authority, without allocating for authorities up to 256 bytes.
type domainIndex struct {
	exact    map[string]*VirtualHost
	suffixes []wildcards // by length, longest first
	prefixes []wildcards
	dflt     *VirtualHost
	seen     map[string]*VirtualHost
}

// wildcards holds the wildcard domains of one length, without the "*".
type wildcards struct {
	n int
	m map[string]*VirtualHost
}

func (d *domainIndex) add(domain string, vh *VirtualHost) error {
	if domain == "" {
		return fmt.Errorf("must not be empty")
	}
	key := lowerASCII(domain)
	if d.seen == nil {
		d.seen = make(map[string]*VirtualHost)
		d.exact = make(map[string]*VirtualHost)
	}
	if prev, dup := d.seen[key]; dup {
		return fmt.Errorf("%q is already a domain of virtual host %q; a domain must be unique across virtual hosts", domain, prev.name)
	}
	d.seen[key] = vh
	switch {
	case key == "*":
		d.dflt = vh
	case key[0] == '*':
		d.suffixes = addWildcard(d.suffixes, key[1:], vh)
	case key[len(key)-1] == '*':
		d.prefixes = addWildcard(d.prefixes, key[:len(key)-1], vh)
	default:
		d.exact[key] = vh
	}
	return nil
}

func addWildcard(ws []wildcards, key string, vh *VirtualHost) []wildcards {
	for i := range ws {
		if ws[i].n == len(key) {
			ws[i].m[key] = vh
			return ws
		}
	}
	ws = append(ws, wildcards{n: len(key), m: map[string]*VirtualHost{key: vh}})
	sort.Slice(ws, func(i, j int) bool { return ws[i].n > ws[j].n })
	return ws
}

// lookup selects the virtual host for host.
func (d *domainIndex) lookup(host string) *VirtualHost {
	var buf [256]byte
	var b []byte
	if len(host) <= len(buf) {
		b = buf[:len(host)]
	} else {
		b = make([]byte, len(host))
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	if vh, ok := d.exact[string(b)]; ok {
		return vh
	}
	for _, w := range d.suffixes {
		if w.n >= len(b) {
			continue
		}
		if vh, ok := w.m[string(b[len(b)-w.n:])]; ok {
			return vh
		}
	}
	for _, w := range d.prefixes {
		if w.n >= len(b) {
			continue
		}
		if vh, ok := w.m[string(b[:w.n])]; ok {
			return vh
		}
	}
	return d.dflt
}

// onlyDefault reports whether "*" is the only domain, so that any request
// (even one without an authority) gets it, as in Envoy.
func (d *domainIndex) onlyDefault() bool {
	return d.dflt != nil && len(d.exact) == 0 && len(d.suffixes) == 0 && len(d.prefixes) == 0
}

// stripPort removes a port from an authority, leaving IPv6 literals
// intact, as Envoy's HeaderUtility::getPortStart does.
func stripPort(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host
	}
	if j := strings.LastIndexByte(host, ']'); j >= 0 && j > i {
		return host
	}
	if host[0] != '[' && strings.IndexByte(host, ':') != i {
		// A bare IPv6 address has no port.
		return host
	}
	return host[:i]
}

// lowerASCII lower-cases ASCII letters only, the way lookup lower-cases
// the authority.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
