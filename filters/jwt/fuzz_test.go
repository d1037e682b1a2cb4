package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"testing"

	"github.com/waygate/waygate/filters"
)

// FuzzVerify feeds arbitrary token strings to a filter that requires a
// token: whatever they hold, it never panics, never lets an unsigned or
// forged token through, and answers 401 or 403 with a body.
func FuzzVerify(f *testing.F) {
	s := newSigner(f, "ES256", "k1")
	hs := newSigner(f, "HS256", "k2")
	good := s.sign(f, claims())
	for _, seed := range []string{
		good, tamper(good), "", ".", "..", "a.b.c", "e30.e30.", "e30.e30.e30",
		rawToken(f, map[string]any{"alg": "none"}, claims(), nil),
		rawToken(f, map[string]any{"alg": "ES256", "kid": []any{1}}, claims(), []byte{1, 2}),
		rawToken(f, map[string]any{"alg": "HS256", "kid": "k1"}, claims("exp", 1e300), []byte{1}),
		"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOi0xfQ.AAAA",
	} {
		f.Add(seed)
	}
	fac, err := New(singleProvider(localProvider(jwks(s, hs))), filters.Env{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { fac.Close() })
	f.Fuzz(func(t *testing.T, tok string) {
		x := newExchange("/", "Authorization", "Bearer "+tok)
		code, body := outcome(t, fac, x)
		switch code {
		case 0:
			// Only a token this test signed may pass.
			if _, ok := x.Metadata[FilterName]["payload"]; !ok {
				t.Fatalf("passed without a verified payload: %q", tok)
			}
		case 401, 403:
			if body == "" {
				t.Fatalf("%d without a body for %q", code, tok)
			}
		default:
			t.Fatalf("status %d for %q", code, tok)
		}
	})
}

// FuzzParseJWKS feeds arbitrary key sets to the JWKS parser: it never
// panics, and every key it keeps has a public key of the type its kty
// says, so signature checks never see a key of the wrong kind.
func FuzzParseJWKS(f *testing.F) {
	rs := newSigner(f, "RS256", "k1")
	es := newSigner(f, "ES384", "k2")
	ed := newSigner(f, "EdDSA", "")
	hs := newSigner(f, "HS256", "")
	for _, seed := range []string{
		jwks(rs, es, ed, hs), `{"keys":[]}`, `{}`, `[]`, `{"keys":[{"kty":"RSA","n":"","e":"AQAB"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA"}]}`,
		`{"keys":[{"kty":"oct","k":""}]}`, `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","alg":"HS256"}]}`,
	} {
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, local bool) {
		ks, err := parseJWKS(data, local)
		if err != nil {
			return
		}
		for _, k := range ks.keys {
			ok := false
			switch k.kty {
			case "RSA":
				_, ok = k.pub.(*rsa.PublicKey)
			case "EC":
				_, ok = k.pub.(*ecdsa.PublicKey)
			case "OKP":
				_, ok = k.pub.(ed25519.PublicKey)
			case "oct":
				_, ok = k.pub.([]byte)
				ok = ok && local
			}
			if !ok {
				t.Fatalf("key %+v kept with public key %T", k, k.pub)
			}
		}
	})
}
