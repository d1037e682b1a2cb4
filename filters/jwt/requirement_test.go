package jwt

import (
	"net/http"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

const (
	issuerA = "https://a.example.com"
	issuerB = "https://b.example.com"
)

// twoProviders is "a" (Authorization: Bearer) and "b" (X-B-Token, no
// prefix), with their signers.
func twoProviders(t *testing.T) (*signer, *signer, map[string]*jwtauthnv3.JwtProvider) {
	a := newSignerN(t, "RS256", "a", 0)
	b := newSigner(t, "ES256", "b")
	pa := localProvider(jwks(a), func(p *jwtauthnv3.JwtProvider) { p.Issuer = issuerA; p.PayloadInMetadata = issuerA })
	pb := localProvider(jwks(b), func(p *jwtauthnv3.JwtProvider) {
		p.Issuer = issuerB
		p.PayloadInMetadata = issuerB
		p.FromHeaders = []*jwtauthnv3.JwtHeader{{Name: "x-b-token"}}
	})
	return a, b, map[string]*jwtauthnv3.JwtProvider{"a": pa, "b": pb}
}

// TestRequirementCombinations is one row per requirement shape and
// token set, with the answer Envoy's verifier tree gives.
func TestRequirementCombinations(t *testing.T) {
	a, b, providers := twoProviders(t)
	goodA := a.sign(t, claims("iss", issuerA))
	goodB := b.sign(t, claims("iss", issuerB))
	badA := tamper(goodA)
	aWithAud := func(aud string) string { return a.sign(t, claims("iss", issuerA, "aud", aud)) }
	andAud := func(name string, aud ...string) *jwtauthnv3.JwtRequirement {
		return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_ProviderAndAudiences{
			ProviderAndAudiences: &jwtauthnv3.ProviderWithAudiences{ProviderName: name, Audiences: aud}}}
	}
	type req struct{ authz, xb string }
	tests := []struct {
		name string
		r    *jwtauthnv3.JwtRequirement
		req  req
		code int
		body string
		meta []string // issuers whose payload is in the metadata
	}{
		{"provider: its token", requireProvider("a"), req{authz: goodA}, 0, "", []string{issuerA}},
		{"provider: missing", requireProvider("a"), req{}, 401, "Jwt is missing", nil},
		{"provider: other issuer's token in its header", requireProvider("a"), req{authz: goodB}, 401, "Jwt issuer is not configured", nil},
		{"provider: token in another provider's header", requireProvider("a"), req{xb: goodA}, 401, "Jwt is missing", nil},
		{"provider: bad token", requireProvider("a"), req{authz: badA}, 401, "Jwt verification fails", nil},
		{"provider_and_audiences: overrides audience", andAud("a", "other"), req{authz: aWithAud("other")}, 0, "", []string{issuerA}},
		{"provider_and_audiences: wrong audience", andAud("a", "other"), req{authz: aWithAud("api")}, 403, "Audiences in Jwt are not allowed", nil},
		{"any: first", requiresAny(requireProvider("a"), requireProvider("b")), req{authz: goodA}, 0, "", []string{issuerA}},
		{"any: second", requiresAny(requireProvider("a"), requireProvider("b")), req{xb: goodB}, 0, "", []string{issuerB}},
		{"any: none", requiresAny(requireProvider("a"), requireProvider("b")), req{}, 401, "Jwt is missing", nil},
		{"any: bad token reports its failure", requiresAny(requireProvider("a"), requireProvider("b")), req{authz: badA}, 401, "Jwt verification fails", nil},
		{"all: both", requiresAll(requireProvider("a"), requireProvider("b")), req{authz: goodA, xb: goodB}, 0, "", []string{issuerA, issuerB}},
		{"all: one missing", requiresAll(requireProvider("a"), requireProvider("b")), req{authz: goodA}, 401, "Jwt is missing", nil},
		{"all: one bad", requiresAll(requireProvider("a"), requireProvider("b")), req{authz: goodA, xb: tamper(goodB)}, 401, "Jwt verification fails", nil},
		{"istio: any(provider, allow_missing) without token", requiresAny(requireProvider("a"), allowMissing()), req{}, 0, "", nil},
		{"istio: any(provider, allow_missing) good", requiresAny(requireProvider("a"), allowMissing()), req{authz: goodA}, 0, "", []string{issuerA}},
		{"istio: any(provider, allow_missing) bad", requiresAny(requireProvider("a"), allowMissing()), req{authz: badA}, 401, "Jwt verification fails", nil},
		{"istio: any(provider, allow_missing) expired", requiresAny(requireProvider("a"), allowMissing()), req{authz: a.sign(t, claims("iss", issuerA, "exp", 1000))}, 401, "Jwt is expired", nil},
		{"istio: any(provider, allow_missing) other issuer", requiresAny(requireProvider("a"), allowMissing()), req{authz: a.sign(t, claims("iss", "https://evil.example.com"))}, 401, "Jwt issuer is not configured", nil},
		{"any: other issuer in a's header", requiresAny(requireProvider("a"), requireProvider("b")), req{authz: goodB}, 401, "Jwt issuer is not configured", nil},
		{"allow_missing alone: none", allowMissing(), req{}, 0, "", nil},
		{"allow_missing alone: good b", allowMissing(), req{xb: goodB}, 0, "", []string{issuerB}},
		{"allow_missing alone: bad", allowMissing(), req{authz: badA}, 401, "Jwt verification fails", nil},
		{"allow_missing_or_failed: bad passes without payload", allowMissingOrFailed(), req{authz: badA}, 0, "", nil},
		{"allow_missing_or_failed: good publishes", allowMissingOrFailed(), req{authz: goodA}, 0, "", []string{issuerA}},
		{"allow_missing_or_failed: unknown issuer passes", allowMissingOrFailed(), req{authz: a.sign(t, claims("iss", "x"))}, 0, "", nil},
		{"any with both bypasses keeps or_failed", requiresAny(requireProvider("a"), allowMissing(), allowMissingOrFailed()), req{authz: badA}, 0, "", nil},
		{"empty requirement checks nothing", &jwtauthnv3.JwtRequirement{}, req{authz: badA}, 0, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFactory(t, &jwtauthnv3.JwtAuthentication{Providers: providers, Rules: []*jwtauthnv3.RequirementRule{prefixRule("/", tt.r)}}, filters.Env{})
			var hdr []string
			if tt.req.authz != "" {
				hdr = append(hdr, bearer(tt.req.authz)...)
			}
			if tt.req.xb != "" {
				hdr = append(hdr, "X-B-Token", tt.req.xb)
			}
			x := newExchange("/", hdr...)
			code, body := outcome(t, f, x)
			if code != tt.code || body != tt.body {
				t.Fatalf("got %d %q, want %d %q", code, body, tt.code, tt.body)
			}
			md := x.Metadata[FilterName]
			if len(md) != len(tt.meta) {
				t.Fatalf("metadata %v, want payloads of %v", md, tt.meta)
			}
			for _, iss := range tt.meta {
				if p, _ := md[iss].(map[string]any); p["iss"] != iss {
					t.Errorf("metadata[%q] = %v", iss, md[iss])
				}
			}
		})
	}
}

// TestRules picks the requirement by the first matching rule.
func TestRules(t *testing.T) {
	a, _, providers := twoProviders(t)
	goodA := a.sign(t, claims("iss", issuerA))
	exact := func(path string) *jwtauthnv3.RequirementRule {
		return &jwtauthnv3.RequirementRule{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: path}}}
	}
	regex := &jwtauthnv3.RequirementRule{
		Match:           &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/admin/[0-9]+"}}},
		RequirementType: &jwtauthnv3.RequirementRule_Requires{Requires: requireProvider("a")},
	}
	byHeader := &jwtauthnv3.RequirementRule{
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/api"},
			CaseSensitive: wrapperspb.Bool(false),
			Headers: []*routev3.HeaderMatcher{{Name: "x-tenant", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
				StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "acme"}}}}},
		},
		RequirementType: &jwtauthnv3.RequirementRule_Requires{Requires: requireProvider("a")},
	}
	byQuery := &jwtauthnv3.RequirementRule{
		Match: &routev3.RouteMatch{
			PathSpecifier:   &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/q"},
			QueryParameters: []*routev3.QueryParameterMatcher{{Name: "secure"}},
		},
		RequirementType: &jwtauthnv3.RequirementRule_Requires{Requires: requireProvider("a")},
	}
	pb := &jwtauthnv3.JwtAuthentication{Providers: providers, Rules: []*jwtauthnv3.RequirementRule{
		exact("/public"), regex, byHeader, byQuery,
	}}
	f := mustFactory(t, pb, filters.Env{})
	tests := []struct {
		name string
		path string
		hdr  []string
		code int
	}{
		{"exempt path without token", "/public", nil, 0},
		{"exempt path is exact", "/public/x", nil, 0}, // no rule matches: not checked
		{"regex path needs token", "/admin/12", nil, 401},
		{"regex path with token", "/admin/12", bearer(goodA), 0},
		{"regex is full match", "/admin/12x", nil, 0},
		{"regex ignores query", "/admin/12?x=1", nil, 401},
		{"header rule needs header", "/API/v1", nil, 0},
		{"header rule, case-insensitive path", "/API/v1", []string{"X-Tenant", "acme"}, 401},
		{"path separated prefix with query", "/q?secure=1", nil, 401},
		{"path separated prefix segment", "/q/x?secure", nil, 401},
		{"path separated prefix not a segment", "/qx?secure=1", nil, 0},
		{"query parameter absent", "/q", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := outcome(t, f, newExchange(tt.path, tt.hdr...)); code != tt.code {
				t.Fatalf("got %d %q, want %d", code, body, tt.code)
			}
		})
	}
}

// TestPerRoute covers requirement_map named by a route and disabled.
func TestPerRoute(t *testing.T) {
	a, b, providers := twoProviders(t)
	pb := &jwtauthnv3.JwtAuthentication{
		Providers:      providers,
		RequirementMap: map[string]*jwtauthnv3.JwtRequirement{"need-a": requireProvider("a"), "need-b": requireProvider("b")},
	}
	f := mustFactory(t, pb, filters.Env{})
	route := func(cfg *jwtauthnv3.PerRouteConfig) *testRoute {
		c, err := buildRoute(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return &testRoute{per: map[string]any{FilterName: c}}
	}
	needB := route(&jwtauthnv3.PerRouteConfig{RequirementSpecifier: &jwtauthnv3.PerRouteConfig_RequirementName{RequirementName: "need-b"}})
	wrong := route(&jwtauthnv3.PerRouteConfig{RequirementSpecifier: &jwtauthnv3.PerRouteConfig_RequirementName{RequirementName: "nope"}})

	x := newExchange("/", "X-B-Token", b.sign(t, claims("iss", issuerB)))
	x.Route = needB
	if code, body := outcome(t, f, x); code != 0 {
		t.Errorf("need-b with b's token: %d %q", code, body)
	}
	x = newExchange("/", bearer(a.sign(t, claims("iss", issuerA)))...)
	x.Route = needB
	if code, body := outcome(t, f, x); code != 401 || body != "Jwt is missing" {
		t.Errorf("need-b with a's token: %d %q", code, body)
	}
	x = newExchange("/")
	x.Route = wrong
	if code, body := outcome(t, f, x); code != 403 || body != "Failed JWT authentication: Wrong requirement_name: nope. It should be one of [need-a, need-b]" {
		t.Errorf("unknown requirement_name: %d %q", code, body)
	}
	x = newExchange("/")
	if code, _ := outcome(t, f, x); code != 0 {
		t.Errorf("route without per-route config and no rules: %d, want not checked", code)
	}
	if c, err := buildRoute(&jwtauthnv3.PerRouteConfig{RequirementSpecifier: &jwtauthnv3.PerRouteConfig_Disabled{Disabled: true}}); err != nil || c != (filters.Disabled{}) {
		t.Errorf("disabled compiles to %v, %v; want filters.Disabled", c, err)
	}
}

func TestCORSPreflightBypass(t *testing.T) {
	s := newSigner(t, "RS256", "")
	pb := singleProvider(localProvider(jwks(s)))
	pb.BypassCorsPreflight = true
	store := stats.NewStore()
	f := mustFactory(t, pb, filters.Env{Stats: store.Filters()})
	x := newExchange("/", "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	x.Request.Method = http.MethodOptions
	if code, _ := outcome(t, f, x); code != 0 {
		t.Fatalf("preflight: %d", code)
	}
	if n := store.Counter("jwt_authn.cors_preflight_bypassed").Value(); n != 1 {
		t.Errorf("cors_preflight_bypassed = %d", n)
	}
	x = newExchange("/", "Origin", "https://app.example.com")
	x.Request.Method = http.MethodOptions
	if code, _ := outcome(t, f, x); code != 401 {
		t.Errorf("OPTIONS without Access-Control-Request-Method: %d, want 401", code)
	}
}
