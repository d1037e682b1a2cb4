package jwt

import "sync"

// Defaults of Envoy's JwtCacheConfig.
const (
	defaultJWTCacheSize     = 100
	defaultJWTCacheMaxToken = 4096
)

// tokenCache holds tokens whose signature a provider verified, keyed by
// the token string, so a client sending the same token again skips the
// signature check (the dearest step by far). The claims are still
// checked on every request, as in Envoy, so an expired token is refused
// even when cached. It is enabled by the provider's jwt_cache_config
// only, as in Envoy: a token stays accepted after its key left the JWKS
// until it is evicted.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto#extensions-filters-http-jwt-authn-v3-jwtcacheconfig
type tokenCache struct {
	mu       sync.Mutex
	m        map[string]*token
	order    []string // insertion order, for eviction
	next     int
	maxToken int
}

func newTokenCache(size, maxToken int) *tokenCache {
	if size <= 0 {
		size = defaultJWTCacheSize
	}
	if maxToken <= 0 {
		maxToken = defaultJWTCacheMaxToken
	}
	return &tokenCache{m: make(map[string]*token, size), order: make([]string, size), maxToken: maxToken}
}

func (c *tokenCache) get(raw string) (*token, bool) {
	c.mu.Lock()
	t, ok := c.m[raw]
	c.mu.Unlock()
	return t, ok
}

// put adds a verified token, evicting the oldest one when full. Tokens
// longer than jwt_max_token_size are not cached.
func (c *tokenCache) put(raw string, t *token) {
	if len(raw) > c.maxToken {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[raw]; ok {
		return
	}
	if old := c.order[c.next]; old != "" {
		delete(c.m, old)
	}
	c.order[c.next] = raw
	c.next = (c.next + 1) % len(c.order)
	c.m[raw] = t
}
