package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	jwtv5 "github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/waygate/waygate/filters"
)

const testIssuer = "https://issuer.example.com"

// signer holds a key pair of one algorithm and the JWK of its public
// half, and signs test tokens.
type signer struct {
	alg  string
	kid  string
	priv any
	jwk  map[string]any
}

var (
	rsaOnce sync.Once
	rsaKeys [3]*rsa.PrivateKey
)

// rsaKey returns one of a few RSA keys generated once per test binary:
// generating 2048-bit keys per test would dominate the run time.
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i%len(rsaKeys)]
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newSigner(t testing.TB, alg, kid string) *signer { return newSignerN(t, alg, kid, 0) }

// newSignerN makes a signer; n picks one of the shared RSA keys, so two
// RSA signers with different n have different keys.
func newSignerN(t testing.TB, alg, kid string, n int) *signer {
	t.Helper()
	s := &signer{alg: alg, kid: kid, jwk: map[string]any{}}
	if kid != "" {
		s.jwk["kid"] = kid
	}
	switch alg[:2] {
	case "RS", "PS":
		k := rsaKey(t, n)
		s.priv = k
		s.jwk["kty"] = "RSA"
		s.jwk["n"] = b64u(k.N.Bytes())
		s.jwk["e"] = b64u([]byte{1, 0, 1})
	case "ES":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		size := (curve.Params().BitSize + 7) / 8
		s.priv = k
		s.jwk["kty"] = "EC"
		s.jwk["crv"] = curve.Params().Name
		s.jwk["x"] = b64u(k.X.FillBytes(make([]byte, size)))
		s.jwk["y"] = b64u(k.Y.FillBytes(make([]byte, size)))
	case "Ed":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s.priv = priv
		s.jwk["kty"] = "OKP"
		s.jwk["crv"] = "Ed25519"
		s.jwk["x"] = b64u(pub)
	case "HS":
		secret := make([]byte, 64)
		rand.Read(secret)
		s.priv = secret
		s.jwk["kty"] = "oct"
		s.jwk["k"] = b64u(secret)
	}
	return s
}

// claims are a valid token's claims for the test issuer, valid now.
func claims(extra ...any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"iss": testIssuer, "sub": "user-1", "aud": "api", "iat": now, "exp": now + 300}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(c, extra[i].(string))
			continue
		}
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

func (s *signer) sign(t testing.TB, c map[string]any) string {
	t.Helper()
	tok := jwtv5.NewWithClaims(jwtv5.GetSigningMethod(s.alg), jwtv5.MapClaims(c))
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatalf("sign %s: %v", s.alg, err)
	}
	return out
}

// rawToken assembles a token from a header and claims with the given
// signature bytes, for tokens no library would sign.
func rawToken(t testing.TB, header, c map[string]any, sig []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	return b64u(h) + "." + b64u(p) + "." + b64u(sig)
}

func jwks(signers ...*signer) string {
	keys := []map[string]any{}
	for _, s := range signers {
		keys = append(keys, s.jwk)
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return string(b)
}

func localProvider(set string, mod ...func(*jwtauthnv3.JwtProvider)) *jwtauthnv3.JwtProvider {
	p := &jwtauthnv3.JwtProvider{
		Issuer:              testIssuer,
		JwksSourceSpecifier: &jwtauthnv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: set}}},
		PayloadInMetadata:   "payload",
	}
	for _, m := range mod {
		m(p)
	}
	return p
}

func requireProvider(name string) *jwtauthnv3.JwtRequirement {
	return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_ProviderName{ProviderName: name}}
}

func allowMissing() *jwtauthnv3.JwtRequirement {
	return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}}
}

func allowMissingOrFailed() *jwtauthnv3.JwtRequirement {
	return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_AllowMissingOrFailed{AllowMissingOrFailed: &emptypb.Empty{}}}
}

func requiresAny(rs ...*jwtauthnv3.JwtRequirement) *jwtauthnv3.JwtRequirement {
	return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_RequiresAny{RequiresAny: &jwtauthnv3.JwtRequirementOrList{Requirements: rs}}}
}

func requiresAll(rs ...*jwtauthnv3.JwtRequirement) *jwtauthnv3.JwtRequirement {
	return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_RequiresAll{RequiresAll: &jwtauthnv3.JwtRequirementAndList{Requirements: rs}}}
}

func prefixRule(prefix string, r *jwtauthnv3.JwtRequirement) *jwtauthnv3.RequirementRule {
	return &jwtauthnv3.RequirementRule{
		Match:           &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
		RequirementType: &jwtauthnv3.RequirementRule_Requires{Requires: r},
	}
}

// singleProvider is a config with provider "p" required on every path.
func singleProvider(p *jwtauthnv3.JwtProvider) *jwtauthnv3.JwtAuthentication {
	return &jwtauthnv3.JwtAuthentication{
		Providers: map[string]*jwtauthnv3.JwtProvider{"p": p},
		Rules:     []*jwtauthnv3.RequirementRule{prefixRule("/", requireProvider("p"))},
	}
}

func mustFactory(t testing.TB, pb *jwtauthnv3.JwtAuthentication, env filters.Env, opts ...options) *Factory {
	t.Helper()
	var o options
	if len(opts) > 0 {
		o = opts[0]
	}
	f, err := newFactory(pb, env, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// testRoute is the view of a matched route the filter reads.
type testRoute struct{ per map[string]any }

func (r *testRoute) Name() string                    { return "r1" }
func (r *testRoute) VirtualHost() string             { return "vh1" }
func (r *testRoute) Cluster() string                 { return "backend" }
func (r *testRoute) PerFilterConfig(name string) any { return r.per[name] }

func newExchange(path string, hdr ...string) *filters.Exchange {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	return &filters.Exchange{
		Context: context.Background(),
		Request: filters.Request{Method: "GET", Scheme: "http", Authority: "api.example.com", Path: path, Header: h},
	}
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// run drives one request through the filter's request phase, as the
// chain does.
func run(f *Factory, x *filters.Exchange) filters.Status {
	fl := f.NewFilter(x)
	if fl == nil {
		return filters.Continue
	}
	return fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true)
}

// outcome is what a request ended with: 0 when it went on, else the
// local reply's status, with its body.
func outcome(t testing.TB, f *Factory, x *filters.Exchange) (int, string) {
	t.Helper()
	st := run(f, x)
	r := x.LocalReply()
	if (st == filters.Stop) != (r != nil) {
		t.Fatalf("status %v with reply %+v", st, r)
	}
	if r == nil {
		return 0, ""
	}
	return r.Status, r.Body
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	p = []byte(strings.Replace(string(p), "user-1", "admin-1", 1))
	parts[1] = b64u(p)
	return strings.Join(parts, ".")
}
