package jwt

import (
	"fmt"
	"testing"
	"time"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

// TestTokenCacheStillChecksClaims caches a verified token and checks
// that time and audience are still applied on a hit.
func TestTokenCacheStillChecksClaims(t *testing.T) {
	s := newSigner(t, "RS256", "")
	now := time.Unix(1_700_000_000, 0)
	p := localProvider(jwks(s), func(p *jwtauthnv3.JwtProvider) {
		p.JwtCacheConfig = &jwtauthnv3.JwtCacheConfig{JwtCacheSize: 2}
		p.Audiences = []string{"api"}
	})
	store := stats.NewStore()
	f := mustFactory(t, singleProvider(p), filters.Env{Stats: store.Filters()}, options{now: func() time.Time { return now }})
	tok := s.sign(t, map[string]any{"iss": testIssuer, "sub": "u", "aud": "api", "exp": now.Unix() + 100})
	for i := range 2 {
		x := newExchange("/", bearer(tok)...)
		if code, body := outcome(t, f, x); code != 0 {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		if md := x.Metadata[FilterName]["payload"].(map[string]any); md["sub"] != "u" {
			t.Fatalf("request %d: payload %v", i, md)
		}
	}
	if _, ok := f.providers["p"].cache.get(tok); !ok {
		t.Fatal("verified token not cached")
	}
	if hit, miss := store.Counter("jwt_authn.jwt_cache_hit").Value(), store.Counter("jwt_authn.jwt_cache_miss").Value(); hit != 1 || miss != 1 {
		t.Errorf("jwt_cache_hit=%d jwt_cache_miss=%d, want 1 1", hit, miss)
	}
	now = now.Add(time.Hour)
	if _, body := outcome(t, f, newExchange("/", bearer(tok)...)); body != "Jwt is expired" {
		t.Fatalf("cached token after exp: %q", body)
	}
}

func TestTokenCacheEvictsOldest(t *testing.T) {
	c := newTokenCache(2, 0)
	for i := range 3 {
		c.put(fmt.Sprint(i), &token{})
	}
	if _, ok := c.get("0"); ok {
		t.Error("oldest token kept past the cache size")
	}
	for _, k := range []string{"1", "2"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("token %s evicted", k)
		}
	}
	big := string(make([]byte, defaultJWTCacheMaxToken+1))
	c.put(big, &token{})
	if _, ok := c.get(big); ok {
		t.Error("token over jwt_max_token_size cached")
	}
}

// TestVerifiedCacheWithoutConfig: without jwt_cache_config a provider
// still remembers a token it verified, and a hit is still refused once
// the token expires.
func TestVerifiedCacheWithoutConfig(t *testing.T) {
	s := newSigner(t, "ES256", "k1")
	now := time.Unix(1_700_000_000, 0)
	store := stats.NewStore()
	f := mustFactory(t, singleProvider(localProvider(jwks(s))), filters.Env{Stats: store.Filters()}, options{now: func() time.Time { return now }})
	tok := s.sign(t, map[string]any{"iss": testIssuer, "sub": "user-1", "exp": now.Unix() + 100})
	for i := range 3 {
		x := newExchange("/", bearer(tok)...)
		if code, body := outcome(t, f, x); code != 0 {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		if md := x.Metadata[FilterName]["payload"].(map[string]any); md["sub"] != "user-1" {
			t.Fatalf("request %d: payload %v", i, md)
		}
	}
	p := f.providers["p"]
	if p.cache != nil {
		t.Fatal("jwt_cache_config cache made without the config")
	}
	if e, ok := p.verified.lookup(tok); !ok || e.ks == nil {
		t.Fatal("verified token not remembered")
	}
	// Envoy's cache counters stay for jwt_cache_config.
	if hit, miss := store.Counter("jwt_authn.jwt_cache_hit").Value(), store.Counter("jwt_authn.jwt_cache_miss").Value(); hit != 0 || miss != 0 {
		t.Errorf("jwt_cache_hit=%d jwt_cache_miss=%d, want 0 0", hit, miss)
	}
	if _, body := outcome(t, f, newExchange("/", bearer(tamper(tok))...)); body != "Jwt verification fails" {
		t.Fatalf("tampered token: %q", body)
	}
	now = now.Add(time.Hour)
	if _, body := outcome(t, f, newExchange("/", bearer(tok)...)); body != "Jwt is expired" {
		t.Fatalf("remembered token after exp: %q", body)
	}
}

// TestVerifiedCacheFollowsKeyRotation rotates a key set without kids on
// a real JWKS server: a token verified against the old key, and
// remembered, is refused once the provider holds the new set, as
// without the cache.
func TestVerifiedCacheFollowsKeyRotation(t *testing.T) {
	old := newSignerN(t, "ES256", "", 0)
	next := newSignerN(t, "ES256", "", 0)
	srv := startJWKS(t, jwks(old))
	env, _, _ := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider(func(r *jwtauthnv3.RemoteJwks) {
		r.CacheDuration = durationpb.New(20 * time.Millisecond)
	})), env)
	tok := old.sign(t, claims())
	for i := range 2 {
		if code, body := outcome(t, f, newExchange("/", bearer(tok)...)); code != 0 {
			t.Fatalf("old key, request %d: %d %q", i, code, body)
		}
	}
	if _, ok := f.providers["p"].verified.lookup(tok); !ok {
		t.Fatal("verified token not remembered")
	}
	srv.set.Store(jwks(next))
	time.Sleep(30 * time.Millisecond) // past cache_duration: the next request refetches
	if code, body := outcome(t, f, newExchange("/", bearer(tok)...)); code != 401 || body != "Jwt verification fails" {
		t.Fatalf("token of the retired key: %d %q", code, body)
	}
	if code, body := outcome(t, f, newExchange("/", bearer(next.sign(t, claims()))...)); code != 0 {
		t.Fatalf("new key: %d %q", code, body)
	}
	// Rotating back verifies the token again rather than trusting the
	// entry made under the first set.
	srv.set.Store(jwks(old))
	time.Sleep(30 * time.Millisecond)
	if code, body := outcome(t, f, newExchange("/", bearer(tok)...)); code != 0 {
		t.Fatalf("old key back: %d %q", code, body)
	}
}

// BenchmarkVerifyES256Repeated is BenchmarkVerifyES256's request sent
// again with the same token, without jwt_cache_config: the key-bound
// cache spares the parse and the signature check.
func BenchmarkVerifyES256Repeated(b *testing.B) {
	s := newSigner(b, "ES256", "k1")
	f := mustFactory(b, singleProvider(localProvider(jwks(s))), filters.Env{})
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
