package jwt

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/waygate/waygate/filters"
)

// TestExtractionSources finds tokens where each location config says,
// and only there.
func TestExtractionSources(t *testing.T) {
	s := newSigner(t, "ES256", "")
	tok := s.sign(t, claims())
	header := func(name, prefix string) func(*jwtauthnv3.JwtProvider) {
		return func(p *jwtauthnv3.JwtProvider) {
			p.FromHeaders = append(p.FromHeaders, &jwtauthnv3.JwtHeader{Name: name, ValuePrefix: prefix})
		}
	}
	params := func(names ...string) func(*jwtauthnv3.JwtProvider) {
		return func(p *jwtauthnv3.JwtProvider) { p.FromParams = names }
	}
	cookies := func(names ...string) func(*jwtauthnv3.JwtProvider) {
		return func(p *jwtauthnv3.JwtProvider) { p.FromCookies = names }
	}
	tests := []struct {
		name string
		mod  []func(*jwtauthnv3.JwtProvider)
		path string
		hdr  []string
		code int
		// kept is the header that must still hold the token after
		// verification ("" when none is expected to).
		gone string
	}{
		{name: "default bearer", hdr: bearer(tok), gone: "Authorization"},
		{name: "default bearer, scheme in lower case", hdr: []string{"Authorization", "bearer " + tok}},
		{name: "default access_token param", path: "/?access_token=" + tok},
		{name: "default ignores other headers", hdr: []string{"X-Token", tok}, code: 401},
		{name: "custom header without prefix", mod: fns(header("x-token", "")), hdr: []string{"X-Token", tok}, gone: "X-Token"},
		{name: "custom header with prefix", mod: fns(header("x-token", "JWT ")), hdr: []string{"X-Token", "JWT " + tok}},
		{name: "custom header prefix missing", mod: fns(header("x-token", "JWT ")), hdr: []string{"X-Token", tok}, code: 401},
		{name: "custom header replaces the default", mod: fns(header("x-token", "")), hdr: bearer(tok), code: 401},
		{name: "prefix followed by other text", mod: fns(header("x-token", "t=")), hdr: []string{"X-Token", "a=1; t=" + tok + "; b=2"}},
		{name: "param", mod: fns(params("jwt")), path: "/x?a=1&jwt=" + tok},
		{name: "param absent", mod: fns(params("jwt")), path: "/x?access_token=" + tok, code: 401},
		{name: "cookie", mod: fns(cookies("session")), hdr: []string{"Cookie", "a=b; session=" + tok}},
		{name: "cookie in a second header", mod: fns(cookies("session")), hdr: []string{"Cookie", "a=b", "Cookie", "session=" + tok}},
		{name: "cookie absent", mod: fns(cookies("session")), hdr: []string{"Cookie", "other=" + tok}, code: 401},
		{name: "two tokens, one bad", hdr: []string{"Authorization", "Bearer " + tok, "Authorization", "Bearer " + tamper(tok)}, code: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFactory(t, singleProvider(localProvider(jwks(s), tt.mod...)), filters.Env{})
			path := tt.path
			if path == "" {
				path = "/"
			}
			x := newExchange(path, tt.hdr...)
			if code, body := outcome(t, f, x); code != tt.code {
				t.Fatalf("got %d %q, want %d", code, body, tt.code)
			}
			if tt.gone != "" && x.Request.Header.Get(tt.gone) != "" {
				t.Errorf("%s still sent upstream", tt.gone)
			}
		})
	}
}

func fns(f ...func(*jwtauthnv3.JwtProvider)) []func(*jwtauthnv3.JwtProvider) { return f }

// TestForwardingAndClaims covers forward, forward_payload_header,
// claim_to_headers, header_in_metadata, the space-delimited claims
// Istio normalizes, and the removal of client-sent copies of the headers
// the filter writes.
func TestForwardingAndClaims(t *testing.T) {
	s := newSigner(t, "EdDSA", "")
	tok := s.sign(t, claims("scope", "read write", "n", 42, "ratio", 0.5, "admin", true,
		"org", map[string]any{"team": "edge"}, "list", []any{"x"}))
	p := localProvider(jwks(s), func(p *jwtauthnv3.JwtProvider) {
		p.Forward = true
		p.ForwardPayloadHeader = "x-jwt-payload"
		p.HeaderInMetadata = "header"
		p.NormalizePayloadInMetadata = &jwtauthnv3.JwtProvider_NormalizePayload{SpaceDelimitedClaims: []string{"scope", "permission"}}
		p.ClearRouteCache = true
		p.ClaimToHeaders = []*jwtauthnv3.JwtClaimToHeader{
			{HeaderName: "x-jwt-sub", ClaimName: "sub"},
			{HeaderName: "x-jwt-n", ClaimName: "n"},
			{HeaderName: "x-jwt-ratio", ClaimName: "ratio"},
			{HeaderName: "x-jwt-admin", ClaimName: "admin"},
			{HeaderName: "x-jwt-team", ClaimName: "org.team"},
			{HeaderName: "x-jwt-list", ClaimName: "list"},
			{HeaderName: "x-jwt-org", ClaimName: "org"},
			{HeaderName: "x-jwt-none", ClaimName: "absent"},
		}
	})
	f := mustFactory(t, singleProvider(p), filters.Env{})
	x := newExchange("/", append(bearer(tok), "X-Jwt-Sub", "forged", "X-Jwt-Payload", "forged")...)
	rematched := false
	x.SetRouteMatcher(func(*filters.Exchange) filters.Route { rematched = true; return nil })
	if code, body := outcome(t, f, x); code != 0 {
		t.Fatalf("rejected: %d %q", code, body)
	}
	h := x.Request.Header
	want := map[string]string{
		"X-Jwt-Sub": "user-1", "X-Jwt-N": "42", "X-Jwt-Ratio": "0.500000", "X-Jwt-Admin": "true",
		"X-Jwt-Team": "edge", "X-Jwt-None": "",
		// Arrays and objects go as base64 JSON, as Envoy copies them.
		"X-Jwt-List": base64.StdEncoding.EncodeToString([]byte(`["x"]`)),
		"X-Jwt-Org":  base64.StdEncoding.EncodeToString([]byte(`{"team":"edge"}`)),
	}
	for k, v := range want {
		if got := h.Values(k); (v == "" && len(got) != 0) || (v != "" && (len(got) != 1 || got[0] != v)) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if h.Get("Authorization") == "" {
		t.Error("forward: token removed")
	}
	raw, err := base64.RawURLEncoding.DecodeString(h.Get("X-Jwt-Payload"))
	var payload map[string]any
	if err != nil || json.Unmarshal(raw, &payload) != nil || payload["sub"] != "user-1" || len(h.Values("X-Jwt-Payload")) != 1 {
		t.Errorf("x-jwt-payload = %q", h.Values("X-Jwt-Payload"))
	}
	md := x.Metadata[FilterName]
	if hdr, _ := md["header"].(map[string]any); hdr["alg"] != "EdDSA" {
		t.Errorf("header metadata = %v", md["header"])
	}
	pl, _ := md["payload"].(map[string]any)
	if sc, _ := pl["scope"].([]any); len(sc) != 2 || sc[0] != "read" || sc[1] != "write" {
		t.Errorf("scope in metadata = %#v, want [read write]", pl["scope"])
	}
	x.MatchedRoute()
	if !rematched {
		t.Error("clear_route_cache: route not matched again after claims were copied to headers")
	}
}

func TestPadForwardPayloadHeader(t *testing.T) {
	s := newSigner(t, "ES256", "")
	p := localProvider(jwks(s), func(p *jwtauthnv3.JwtProvider) {
		p.ForwardPayloadHeader = "x-jwt-payload"
		p.PadForwardPayloadHeader = true
	})
	f := mustFactory(t, singleProvider(p), filters.Env{})
	for _, sub := range []string{"a", "ab", "abc"} {
		x := newExchange("/", bearer(s.sign(t, claims("sub", sub)))...)
		if code, _ := outcome(t, f, x); code != 0 {
			t.Fatal(code)
		}
		v := x.Request.Header.Get("X-Jwt-Payload")
		if len(v)%4 != 0 {
			t.Errorf("payload %q not padded", v)
		}
		if _, err := base64.URLEncoding.DecodeString(v); err != nil {
			t.Errorf("payload %q: %v", v, err)
		}
	}
}

// clear_route_cache matches the route again once a token is verified,
// when a claim went to a header or the payload to the metadata (routes
// may match on either), as Envoy's filter does; not otherwise.
func TestClearRouteCache(t *testing.T) {
	s := newSigner(t, "ES256", "")
	tok := s.sign(t, claims("groups", []any{"group1"}))
	for _, c := range []struct {
		name    string
		set     func(p *jwtauthnv3.JwtProvider)
		rematch bool
	}{
		{"payload in metadata", func(p *jwtauthnv3.JwtProvider) { p.ClearRouteCache, p.PayloadInMetadata = true, "payload" }, true},
		{"claim to a header", func(p *jwtauthnv3.JwtProvider) {
			p.ClearRouteCache = true
			p.ClaimToHeaders = []*jwtauthnv3.JwtClaimToHeader{{HeaderName: "x-sub", ClaimName: "sub"}}
		}, true},
		{"a claim the token lacks, no metadata", func(p *jwtauthnv3.JwtProvider) {
			p.ClearRouteCache, p.PayloadInMetadata = true, ""
			p.ClaimToHeaders = []*jwtauthnv3.JwtClaimToHeader{{HeaderName: "x-absent", ClaimName: "absent"}}
		}, false},
		{"off", func(p *jwtauthnv3.JwtProvider) { p.PayloadInMetadata = "payload" }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := mustFactory(t, singleProvider(localProvider(jwks(s), c.set)), filters.Env{})
			x := newExchange("/", bearer(tok)...)
			rematched := false
			x.SetRouteMatcher(func(*filters.Exchange) filters.Route { rematched = true; return nil })
			if code, body := outcome(t, f, x); code != 0 {
				t.Fatalf("rejected: %d %q", code, body)
			}
			x.MatchedRoute()
			if rematched != c.rematch {
				t.Errorf("route matched again: %v, want %v", rematched, c.rematch)
			}
		})
	}
}
