package authz

import (
	"fmt"
	"net/netip"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// compileCIDR turns an envoy.config.core.v3.CidrRange into a prefix. An
// unset prefix_len is 0 and matches every address of the family, as in
// Envoy.
func compileCIDR(c *corev3.CidrRange) (netip.Prefix, error) {
	addr, err := netip.ParseAddr(c.GetAddressPrefix())
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address_prefix: %q is not an IP address", c.GetAddressPrefix())
	}
	addr = addr.Unmap()
	bits := int(c.GetPrefixLen().GetValue())
	if bits > addr.BitLen() {
		return netip.Prefix{}, fmt.Errorf("prefix_len: %d is longer than the %d bits of %s", bits, addr.BitLen(), addr)
	}
	return netip.PrefixFrom(addr, bits).Masked(), nil
}

func inPrefix(p netip.Prefix, ap netip.AddrPort) bool {
	a := ap.Addr()
	if !a.IsValid() {
		return false
	}
	return p.Contains(a.Unmap())
}
