package translate

import (
	"slices"
	"testing"

	"istio.io/api/networking/v1alpha3"
)

func TestRoutingClaim(t *testing.T) {
	for _, c := range []struct {
		name   string
		claims []string
		ok     bool
	}{
		{"@request.auth.claims.groups", []string{"groups"}, true},
		{"@request.auth.claims.nested.key", []string{"nested", "key"}, true},
		{"@request.auth.claims[nested][key]", []string{"nested", "key"}, true},
		{"@request.auth.claims[dotted.name]", []string{"dotted.name"}, true},
		{"@Request.Auth.Claims.Groups", []string{"Groups"}, true},
		{"@request.auth.claims", nil, false},
		{"@request.auth.claims.", nil, false},
		{"@request.auth.claims[]", nil, false},
		{"@request.auth.claims[open", nil, false},
		{"@request.auth.claimsgroups", nil, false},
		{"x-user", nil, false},
	} {
		claims, ok := routingClaim(c.name)
		if ok != c.ok || !slices.Equal(claims, c.claims) {
			t.Errorf("routingClaim(%q) = %q, %v; want %q, %v", c.name, claims, ok, c.claims, c.ok)
		}
	}
}

func TestClaimMatches(t *testing.T) {
	exact := func(s string) *v1alpha3.StringMatch {
		return &v1alpha3.StringMatch{MatchType: &v1alpha3.StringMatch_Exact{Exact: s}}
	}
	out, unsupported := translateMatch(&v1alpha3.HTTPMatchRequest{
		Headers:        map[string]*v1alpha3.StringMatch{"@request.auth.claims.groups": exact("admins"), "x-a": exact("1")},
		WithoutHeaders: map[string]*v1alpha3.StringMatch{"@request.auth.claims[sub]": exact("bob")},
	})
	if unsupported != "" {
		t.Fatalf("unsupported %q", unsupported)
	}
	if len(out.Headers) != 1 || out.Headers[0].Name != "x-a" {
		t.Errorf("headers %v; want only x-a", out.Headers)
	}
	dm := out.GetDynamicMetadata()
	if len(dm) != 2 || dm[0].GetInvert() || !dm[1].GetInvert() ||
		dm[0].GetPath()[1].GetKey() != "groups" || dm[1].GetPath()[1].GetKey() != "sub" {
		t.Errorf("dynamic_metadata %v", dm)
	}
	for _, bad := range []map[string]*v1alpha3.StringMatch{
		{"@request.auth.claims": exact("x")},
		{"@request.auth.claims.groups": {}},
	} {
		if _, unsupported := translateMatch(&v1alpha3.HTTPMatchRequest{Headers: bad}); unsupported == "" {
			t.Errorf("%v: not reported", bad)
		}
	}
}
