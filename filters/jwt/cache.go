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
	m        map[string]cached
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
	return &tokenCache{m: make(map[string]cached, size), order: make([]string, size), maxToken: maxToken}
}

// cached is a verified token and the key set whose key verified it.
type cached struct {
	t  *token
	ks *keySet
}

// get returns the parsed token cached for raw, and the key set that
// verified it.
func (c *tokenCache) get(raw string) (*token, bool) {
	e, ok := c.lookup(raw)
	return e.t, ok
}

func (c *tokenCache) lookup(raw string) (cached, bool) {
	if c == nil {
		return cached{}, false
	}
	c.mu.Lock()
	e, ok := c.m[raw]
	c.mu.Unlock()
	return e, ok
}

// put adds a verified token, evicting the oldest one when full. Tokens
// longer than jwt_max_token_size are not cached.
func (c *tokenCache) put(raw string, t *token) { c.putVerified(raw, t, nil) }

// putVerified adds a token with the key set that verified it.
func (c *tokenCache) putVerified(raw string, t *token, ks *keySet) {
	if c == nil {
		return
	}
	if len(raw) > c.maxToken {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[raw]; ok {
		// Verified again, against a newer key set.
		c.m[raw] = cached{t: t, ks: ks}
		return
	}
	if old := c.order[c.next]; old != "" {
		delete(c.m, old)
	}
	c.order[c.next] = raw
	c.next = (c.next + 1) % len(c.order)
	c.m[raw] = cached{t: t, ks: ks}
}

// Without jwt_cache_config a provider still keeps a verified cache (see
// provider.verified), bound to the key set: an entry stands only for
// "this exact token's signature checks out against this exact, immutable
// key set". A request whose provider currently has that same set would
// compute the same answer, so the cache skips only the parse and the
// signature check and changes no outcome: claims (exp, nbf, audiences,
// issuer, subjects) are checked on every request, and once the keys are
// refetched or rotated the set is a new one and the token is verified
// against it again, so a token whose key left the JWKS is refused. It
// matters because an ES256 or RS256 check costs more than the rest of a
// proxied request together, and Istio's RequestAuthentication never sets
// jwt_cache_config. Its size is Envoy's default cache size, and tokens
// over Envoy's default jwt_max_token_size are not kept.
func newVerifiedCache() *tokenCache {
	return newTokenCache(defaultJWTCacheSize, defaultJWTCacheMaxToken)
}
