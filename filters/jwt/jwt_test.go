package jwt

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

var allAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

// TestEveryAlgorithmAccepted verifies a valid token of every algorithm
// Envoy supports, with and without kid, and checks what a verified token
// leaves behind: the payload in dynamic metadata, the token removed.
func TestEveryAlgorithmAccepted(t *testing.T) {
	for _, alg := range allAlgs {
		for _, kid := range []string{"", "k1"} {
			t.Run(alg+"/kid="+kid, func(t *testing.T) {
				s := newSigner(t, alg, kid)
				f := mustFactory(t, singleProvider(localProvider(jwks(s))), filters.Env{})
				x := newExchange("/orders", bearer(s.sign(t, claims("scope", "read write")))...)
				if code, body := outcome(t, f, x); code != 0 {
					t.Fatalf("rejected: %d %q", code, body)
				}
				md, _ := x.Metadata[FilterName]["payload"].(map[string]any)
				if md["sub"] != "user-1" || md["iss"] != testIssuer {
					t.Errorf("metadata payload = %v", md)
				}
				if x.Request.Header.Get("Authorization") != "" {
					t.Error("token forwarded although forward is false")
				}
			})
		}
	}
}

// TestAttacks is the set of tokens a gateway must refuse, each with the
// status and body Envoy gives.
func TestAttacks(t *testing.T) {
	rs := newSignerN(t, "RS256", "k1", 0)
	other := newSignerN(t, "RS256", "k2", 1)
	otherNoKid := newSignerN(t, "RS256", "", 1)
	es := newSigner(t, "ES256", "")
	es384 := newSigner(t, "ES384", "")
	now := time.Now().Unix()

	// The RS/HS confusion: an HMAC token whose secret is the RSA public
	// key the attacker can read from the JWKS.
	confusion := func() string {
		hs := &signer{alg: "HS256", kid: "k1", priv: []byte(rs.jwk["n"].(string))}
		return hs.sign(t, claims())
	}
	noneToken := rawToken(t, map[string]any{"alg": "none", "typ": "JWT"}, claims(), nil)

	tests := []struct {
		name  string
		token string
		keys  string
		code  int
		body  string
	}{
		{name: "valid", token: rs.sign(t, claims()), code: 0},
		{name: "alg none", token: noneToken, code: 401, body: "Jwt header [alg] field value is invalid"},
		{name: "alg none with kid", token: rawToken(t, map[string]any{"alg": "none", "kid": "k1"}, claims(), nil), code: 401, body: "Jwt header [alg] field value is invalid"},
		{name: "alg missing", token: rawToken(t, map[string]any{"typ": "JWT"}, claims(), []byte("x")), code: 401, body: "Jwt header [alg] field is not a string"},
		{name: "RS/HS confusion", token: confusion(), code: 401, body: "Jwks doesn't have key to match kid or alg from Jwt"},
		{name: "expired", token: rs.sign(t, claims("exp", now-3600)), code: 401, body: "Jwt is expired"},
		{name: "expired within clock skew", token: rs.sign(t, claims("exp", now-30)), code: 0},
		{name: "not yet valid", token: rs.sign(t, claims("nbf", now+3600)), code: 401, body: "Jwt not yet valid"},
		{name: "nbf within clock skew", token: rs.sign(t, claims("nbf", now+30)), code: 0},
		{name: "iat in the future is not checked", token: rs.sign(t, claims("iat", now+3600)), code: 0},
		{name: "no exp is accepted", token: rs.sign(t, claims("exp", nil)), code: 0},
		{name: "wrong issuer", token: rs.sign(t, claims("iss", "https://evil.example.com")), code: 401, body: "Jwt issuer is not configured"},
		{name: "no issuer", token: rs.sign(t, claims("iss", nil)), code: 401, body: "Jwt issuer is not configured"},
		{name: "wrong audience", token: rs.sign(t, claims("aud", "other")), code: 403, body: "Audiences in Jwt are not allowed"},
		{name: "audience in a list", token: rs.sign(t, claims("aud", []any{"other", "https://api/"})), code: 0},
		{name: "tampered payload", token: tamper(rs.sign(t, claims())), code: 401, body: "Jwt verification fails"},
		{name: "unknown kid", token: other.sign(t, claims()), code: 401, body: "Jwks doesn't have key to match kid or alg from Jwt"},
		{name: "other key without kid", token: otherNoKid.sign(t, claims()), code: 401, body: "Jwt verification fails"},
		{name: "EC token against RSA keys", token: es.sign(t, claims()), code: 401, body: "Jwks doesn't have key to match kid or alg from Jwt"},
		{name: "ES256 token against a P-384 key", keys: jwks(es384), token: (&signer{alg: "ES256", priv: es.priv}).sign(t, claims()), code: 401, body: "Jwks doesn't have key to match kid or alg from Jwt"},
		{name: "one segment", token: "abc", code: 401, body: "Jwt is not in the form of Header.Payload.Signature"},
		{name: "two segments", token: "abc.def", code: 401, body: "Jwt is not in the form of Header.Payload.Signature"},
		{name: "four segments", token: "a.b.c.d", code: 401, body: "Jwt is not in the form of Header.Payload.Signature"},
		{name: "header not JSON", token: b64u([]byte("nope")) + ".e30.c2ln", code: 401, body: "Jwt header is an invalid Base64url input or an invalid JSON"},
		{name: "header not base64", token: "e30+.e30.c2ln", code: 401, body: "Jwt header is an invalid Base64url input or an invalid JSON"},
		{name: "kid not a string", token: rawToken(t, map[string]any{"alg": "RS256", "kid": 7}, claims(), []byte("x")), code: 401, body: "Jwt header [kid] field is not a string"},
		{name: "payload an array", token: b64u([]byte(`{"alg":"RS256"}`)) + "." + b64u([]byte(`[1]`)) + ".c2ln", code: 401, body: "Jwt payload is an invalid Base64 or an invalid JSON"},
		{name: "exp not a number", token: rawToken(t, map[string]any{"alg": "RS256"}, claims("exp", "tomorrow"), []byte("x")), code: 401, body: "Jwt payload is an invalid Base64 or an invalid JSON"},
		{name: "exp negative", token: rawToken(t, map[string]any{"alg": "RS256"}, claims("exp", -1), []byte("x")), code: 401, body: "Jwt payload is an invalid Base64 or an invalid JSON"},
		{name: "iss not a string", token: rawToken(t, map[string]any{"alg": "RS256"}, claims("iss", 3), []byte("x")), code: 401, body: "Jwt payload is an invalid Base64 or an invalid JSON"},
		{name: "signature not base64", token: strings.TrimSuffix(rs.sign(t, claims()), "") + "+", code: 401, body: "Jwt signature is an invalid Base64"},
		{name: "oversized", token: rs.sign(t, claims("pad", strings.Repeat("a", 9000))), code: 401, body: "Jwt is too large"},
		{name: "empty JWKS keys", keys: `{"keys":[]}`, token: rs.sign(t, claims()), code: 401, body: "Jwks doesn't have any valid public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := tt.keys
			if keys == "" {
				keys = jwks(rs)
			}
			store := stats.NewStore()
			p := localProvider(keys, func(p *jwtauthnv3.JwtProvider) { p.Audiences = []string{"api", "http://api"} })
			f := mustFactory(t, singleProvider(p), filters.Env{Stats: store.Scope("http.ingress.").Filters()})
			x := newExchange("/orders?id=1", bearer(tt.token)...)
			code, body := outcome(t, f, x)
			if code != tt.code || body != tt.body {
				t.Fatalf("got %d %q, want %d %q", code, body, tt.code, tt.body)
			}
			allowed := store.Counter("http.ingress.jwt_authn.allowed").Value()
			denied := store.Counter("http.ingress.jwt_authn.denied").Value()
			if tt.code == 0 {
				if allowed != 1 || denied != 0 {
					t.Errorf("allowed=%d denied=%d, want 1 0", allowed, denied)
				}
				return
			}
			if allowed != 0 || denied != 1 {
				t.Errorf("allowed=%d denied=%d, want 0 1", allowed, denied)
			}
			r := x.LocalReply()
			want := `Bearer realm="http://api.example.com/orders", error="invalid_token"`
			if got := r.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
			if !strings.HasPrefix(r.Details, "jwt_authn_access_denied{") || strings.Contains(r.Details, " ") {
				t.Errorf("details = %q", r.Details)
			}
			if x.Metadata[FilterName] != nil {
				t.Errorf("metadata written for a rejected token: %v", x.Metadata)
			}
		})
	}
}

func TestMissingToken(t *testing.T) {
	s := newSigner(t, "RS256", "")
	f := mustFactory(t, singleProvider(localProvider(jwks(s))), filters.Env{})
	x := newExchange("/a?b=c")
	code, body := outcome(t, f, x)
	if code != 401 || body != "Jwt is missing" {
		t.Fatalf("got %d %q", code, body)
	}
	if got := x.LocalReply().Header.Get("WWW-Authenticate"); got != `Bearer realm="http://api.example.com/a"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if d := x.LocalReply().Details; d != "jwt_authn_access_denied{Jwt_is_missing}" {
		t.Errorf("details = %q", d)
	}
}

func TestStripFailureResponse(t *testing.T) {
	s := newSigner(t, "RS256", "")
	pb := singleProvider(localProvider(jwks(s)))
	pb.StripFailureResponse = true
	f := mustFactory(t, pb, filters.Env{})
	x := newExchange("/")
	if code, body := outcome(t, f, x); code != 401 || body != "" || x.LocalReply().Header != nil {
		t.Fatalf("got %d %q %v", code, body, x.LocalReply().Header)
	}
}

// TestTimeChecks pins exp and nbf against a fixed clock and the
// configured clock_skew_seconds, as jwt_verify_lib's
// verifyTimeConstraint.
func TestTimeChecks(t *testing.T) {
	s := newSigner(t, "ES256", "")
	const now = 1_700_000_000
	tests := []struct {
		name string
		skew uint32
		c    map[string]any
		want string
	}{
		{"exp just within default skew", 0, map[string]any{"exp": now - 60}, ""},
		{"exp just past default skew", 0, map[string]any{"exp": now - 61}, "Jwt is expired"},
		{"exp past a 5s skew", 5, map[string]any{"exp": now - 6}, "Jwt is expired"},
		{"nbf just within default skew", 0, map[string]any{"nbf": now + 60}, ""},
		{"nbf past default skew", 0, map[string]any{"nbf": now + 61}, "Jwt not yet valid"},
		{"nbf past a 5s skew", 5, map[string]any{"nbf": now + 6}, "Jwt not yet valid"},
		{"fractional exp refused", 0, map[string]any{"exp": now + 0.5}, "Jwt payload is an invalid Base64 or an invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := localProvider(jwks(s), func(p *jwtauthnv3.JwtProvider) { p.ClockSkewSeconds = tt.skew })
			f := mustFactory(t, singleProvider(p), filters.Env{}, options{now: func() time.Time { return time.Unix(now, 0) }})
			c := map[string]any{"iss": testIssuer}
			for k, v := range tt.c {
				c[k] = v
			}
			_, body := outcome(t, f, newExchange("/", bearer(s.sign(t, c))...))
			if body != tt.want {
				t.Fatalf("got %q, want %q", body, tt.want)
			}
		})
	}
}

func TestRequireExpirationAndMaxLifetime(t *testing.T) {
	s := newSigner(t, "EdDSA", "")
	p := localProvider(jwks(s), func(p *jwtauthnv3.JwtProvider) { p.RequireExpiration = true })
	f := mustFactory(t, singleProvider(p), filters.Env{})
	if code, _ := outcome(t, f, newExchange("/", bearer(s.sign(t, claims("exp", nil)))...)); code != 401 {
		t.Errorf("token without exp: %d, want 401", code)
	}
	if code, _ := outcome(t, f, newExchange("/", bearer(s.sign(t, claims()))...)); code != 0 {
		t.Errorf("token with exp: %d, want 0", code)
	}
}

// TestOnlySymmetricKeysVerifyHS checks that an HS token never meets an
// asymmetric key, and that an oct key never verifies an RS token.
func TestOnlySymmetricKeysVerifyHS(t *testing.T) {
	hs := newSigner(t, "HS256", "k")
	rs := newSigner(t, "RS256", "k")
	f := mustFactory(t, singleProvider(localProvider(jwks(hs, rs))), filters.Env{})
	for _, s := range []*signer{hs, rs} {
		if code, body := outcome(t, f, newExchange("/", bearer(s.sign(t, claims()))...)); code != 0 {
			t.Errorf("%s: %d %q", s.alg, code, body)
		}
	}
	// An RS256 header over an HMAC signature made with the oct secret.
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": "k"})
	p, _ := json.Marshal(claims())
	signed := b64u(h) + "." + b64u(p)
	sig, _ := (&signer{alg: "HS256", priv: hs.priv}).signRaw(t, signed)
	if code, _ := outcome(t, f, newExchange("/", bearer(signed+"."+sig)...)); code != 401 {
		t.Errorf("RS256 header with an HMAC signature: %d, want 401", code)
	}
}

func (s *signer) signRaw(t testing.TB, signed string) (string, error) {
	t.Helper()
	m := methods[s.alg]
	b, err := m.Sign(signed, s.priv)
	return base64.RawURLEncoding.EncodeToString(b), err
}

func TestConfigErrors(t *testing.T) {
	s := newSigner(t, "RS256", "")
	tests := []struct {
		name string
		pb   *jwtauthnv3.JwtAuthentication
		want string
	}{
		{"unknown provider", &jwtauthnv3.JwtAuthentication{
			Providers: map[string]*jwtauthnv3.JwtProvider{"p": localProvider(jwks(s))},
			Rules:     []*jwtauthnv3.RequirementRule{prefixRule("/", requireProvider("q"))},
		}, `rules[0].requires.provider_name: provider "q" is not configured (providers: p)`},
		{"no jwks", &jwtauthnv3.JwtAuthentication{
			Providers: map[string]*jwtauthnv3.JwtProvider{"p": {Issuer: "i"}},
		}, `providers["p"].jwks_source_specifier: one of local_jwks or remote_jwks is required`},
		{"unknown requirement name", &jwtauthnv3.JwtAuthentication{
			Providers: map[string]*jwtauthnv3.JwtProvider{"p": localProvider(jwks(s))},
			Rules: []*jwtauthnv3.RequirementRule{{
				Match:           prefixRule("/", nil).Match,
				RequirementType: &jwtauthnv3.RequirementRule_RequirementName{RequirementName: "r"},
			}},
		}, `rules[0].requirement_name: "r" is not in requirement_map ()`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.pb, filters.Env{})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
		})
	}
}

// TestBadLocalJWKSFailsRequestsNotConfig keeps the listener: a provider
// whose inline JWKS does not parse refuses its tokens instead.
func TestBadLocalJWKSFailsRequestsNotConfig(t *testing.T) {
	s := newSigner(t, "RS256", "")
	f := mustFactory(t, singleProvider(localProvider("not json")), filters.Env{})
	if _, body := outcome(t, f, newExchange("/", bearer(s.sign(t, claims()))...)); body != "Jwks doesn't have any valid public key" {
		t.Fatalf("body = %q", body)
	}
}
