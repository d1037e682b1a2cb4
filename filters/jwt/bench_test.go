package jwt

import (
	"testing"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/waygate/waygate/filters"
)

// benchmarkVerify is one request with a valid token through a provider
// whose keys are loaded (the warm path of every authenticated request):
// extraction, parsing, claim checks, signature, payload in metadata.
// The key-bound cache is off, so each request checks the signature as a
// new token would (BenchmarkVerifyES256Repeated keeps it).
func benchmarkVerify(b *testing.B, alg string) {
	s := newSigner(b, alg, "k1")
	f := mustFactory(b, singleProvider(localProvider(jwks(s))), filters.Env{})
	f.providers["p"].verified = nil
	tok := s.sign(b, claims())
	x := newExchange("/orders", bearer(tok)...)
	authz := "Bearer " + tok
	b.ReportAllocs()
	for b.Loop() {
		x.Request.Header.Set("Authorization", authz)
		x.Metadata = nil
		if run(f, x) != filters.Continue {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) { benchmarkVerify(b, "RS256") }
func BenchmarkVerifyES256(b *testing.B) { benchmarkVerify(b, "ES256") }
func BenchmarkVerifyEdDSA(b *testing.B) { benchmarkVerify(b, "EdDSA") }
func BenchmarkVerifyHS256(b *testing.B) { benchmarkVerify(b, "HS256") }

// BenchmarkNoTokenAllowMissing is a request without a token under
// istiod's requirement (requires_any [provider, allow_missing]): the cost
// a RequestAuthentication adds to anonymous traffic.
func BenchmarkNoTokenAllowMissing(b *testing.B) {
	s := newSigner(b, "RS256", "k1")
	pb := singleProvider(localProvider(jwks(s)))
	pb.Rules[0] = prefixRule("/", requiresAny(requireProvider("p"), allowMissing()))
	f := mustFactory(b, pb, filters.Env{})
	x := newExchange("/orders")
	b.ReportAllocs()
	for b.Loop() {
		if run(f, x) != filters.Continue {
			b.Fatal("rejected")
		}
	}
}

// BenchmarkVerifyRS256Cached is the same request with the provider's
// jwt_cache_config on: a client repeating its token skips the signature.
func BenchmarkVerifyRS256Cached(b *testing.B) {
	s := newSigner(b, "RS256", "k1")
	p := localProvider(jwks(s), func(p *jwtauthnv3.JwtProvider) { p.JwtCacheConfig = &jwtauthnv3.JwtCacheConfig{} })
	f := mustFactory(b, singleProvider(p), filters.Env{})
	tok := s.sign(b, claims())
	x := newExchange("/orders", bearer(tok)...)
	authz := "Bearer " + tok
	b.ReportAllocs()
	for b.Loop() {
		x.Request.Header.Set("Authorization", authz)
		x.Metadata = nil
		if run(f, x) != filters.Continue {
			b.Fatal("rejected")
		}
	}
}
