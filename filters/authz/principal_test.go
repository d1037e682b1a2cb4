package authz

import (
	"net/netip"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
)

// Behind a balancer speaking the PROXY protocol and a proxy writing
// x-forwarded-for, the three address principals see three addresses.
func TestAddressPrincipals(t *testing.T) {
	x := &filters.Exchange{Downstream: filters.Connection{
		RemoteAddr:       netip.MustParseAddrPort("203.0.113.9:0"),     // from x-forwarded-for
		SourceAddr:       netip.MustParseAddrPort("198.51.100.7:4000"), // from the PROXY header
		DirectRemoteAddr: netip.MustParseAddrPort("10.0.0.5:5000"),     // the balancer
	}}
	cidr := func(ip string) *corev3.CidrRange {
		return &corev3.CidrRange{AddressPrefix: ip, PrefixLen: wrapperspb.UInt32(32)}
	}
	for _, tc := range []struct {
		name string
		p    *rbacv3.Principal
		want bool
	}{
		{"remote_ip is the forwarded client", &rbacv3.Principal{Identifier: &rbacv3.Principal_RemoteIp{RemoteIp: cidr("203.0.113.9")}}, true},
		{"source_ip is the PROXY source", &rbacv3.Principal{Identifier: &rbacv3.Principal_SourceIp{SourceIp: cidr("198.51.100.7")}}, true},
		{"source_ip is not the forwarded client", &rbacv3.Principal{Identifier: &rbacv3.Principal_SourceIp{SourceIp: cidr("203.0.113.9")}}, false},
		{"direct_remote_ip is the balancer", &rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: cidr("10.0.0.5")}}, true},
		{"direct_remote_ip is not the client", &rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: cidr("203.0.113.9")}}, false},
	} {
		m, err := compilePrincipal(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.match(x); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Without the extra addresses, all three are the peer.
	plain := &filters.Exchange{Downstream: filters.Connection{RemoteAddr: netip.MustParseAddrPort("10.0.0.5:1")}}
	m, _ := compilePrincipal(&rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: cidr("10.0.0.5")}})
	if !m.match(plain) {
		t.Error("direct_remote_ip without a direct address did not fall back to the peer")
	}
}
