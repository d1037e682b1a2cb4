package jwt

import (
	"fmt"
	"testing"
	"time"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

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
