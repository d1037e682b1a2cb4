package translate

import (
	"slices"
	"testing"
)

func TestHostMatching(t *testing.T) {
	for _, tc := range []struct {
		a, b   string
		subset bool // a ⊆ b
		match  bool
	}{
		{"a.example.com", "a.example.com", true, true},
		{"a.example.com", "*.example.com", true, true},
		{"*.example.com", "a.example.com", false, true},
		{"a.b.example.com", "*.example.com", true, true},
		{"*.a.example.com", "*.example.com", true, true},
		{"example.com", "*.example.com", false, false},
		{"anything", "*", true, true},
		{"*", "a.example.com", false, true},
		{"a.example.com", "b.example.com", false, false},
	} {
		if got := hostSubsetOf(tc.a, tc.b); got != tc.subset {
			t.Errorf("hostSubsetOf(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.subset)
		}
		if got := hostMatches(tc.a, tc.b); got != tc.match {
			t.Errorf("hostMatches(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.match)
		}
	}
}

func TestIntersectHosts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		server, vs []string
		want       []string
	}{
		{"wildcard server keeps vs hosts", []string{"*"}, []string{"a.com", "b.com"}, []string{"a.com", "b.com"}},
		{"wildcard vs keeps server hosts", []string{"a.example.com"}, []string{"*.example.com"}, []string{"a.example.com"}},
		{"both wildcards keep the narrower", []string{"*.example.com"}, []string{"*"}, []string{"*.example.com"}},
		{"no overlap", []string{"a.com"}, []string{"b.com"}, nil},
		{"duplicates once", []string{"*", "a.com"}, []string{"a.com"}, []string{"a.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := intersectHosts(tc.server, tc.vs); !slices.Equal(got, tc.want) {
				t.Errorf("intersectHosts(%v, %v) = %v, want %v", tc.server, tc.vs, got, tc.want)
			}
		})
	}
}

func TestServerHostsFor(t *testing.T) {
	hosts := []string{"plain.com", "*/any.com", "./own.com", "team/team.com", "other/other.com"}
	for _, tc := range []struct {
		namespace string
		want      []string
	}{
		{"gw-ns", []string{"plain.com", "any.com", "own.com"}},
		{"team", []string{"plain.com", "any.com", "team.com"}},
	} {
		if got := serverHostsFor(hosts, "gw-ns", tc.namespace); !slices.Equal(got, tc.want) {
			t.Errorf("serverHostsFor(%s) = %v, want %v", tc.namespace, got, tc.want)
		}
	}
}

func TestResolveGatewayName(t *testing.T) {
	for _, tc := range []struct{ in, ns, want string }{
		{"mesh", "default", "mesh"},
		{"bookinfo-gateway", "default", "default/bookinfo-gateway"},
		{"istio-system/ingress", "default", "istio-system/ingress"},
		{"ingress.istio-system.svc.cluster.local", "default", "istio-system/ingress"},
	} {
		if got := resolveGatewayName(tc.in, tc.ns); got != tc.want {
			t.Errorf("resolveGatewayName(%q, %q) = %q, want %q", tc.in, tc.ns, got, tc.want)
		}
	}
}
