package jwt

import (
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
