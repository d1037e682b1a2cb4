package jwt

import (
	"context"
	"fmt"
	"log/slog"
	"net/textproto"
	"strings"
	"time"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/matcher"
)

// Defaults Envoy documents for a JwtProvider.
const (
	defaultClockSkew     = 60 // seconds
	defaultCacheDuration = 10 * time.Minute
	defaultFetchTimeout  = time.Second
	defaultRefetch       = time.Second
	// maxTokenSize bounds a token before anything parses it. Envoy
	// bounds tokens only through the request header limit; a gateway
	// facing the internet refuses a 60 KiB token before decoding it.
	maxTokenSize = 8 << 10
	maxJWKSBytes = 1 << 20
)

// provider is a compiled JwtProvider: how its tokens are found, checked
// and reported.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto#extensions-filters-http-jwt-authn-v3-jwtprovider
type provider struct {
	name        string
	issuer      string
	audiences   []string // normalized, nil when not checked
	subjects    *matcher.String
	requireExp  bool
	maxLifetime int64 // seconds, 0 for no limit
	skew        int64
	cache       *tokenCache // nil without jwt_cache_config
	// verified, without jwt_cache_config, remembers tokens verified
	// against a key set, valid while the provider's set is that one
	// (see newVerifiedCache).
	verified *tokenCache

	src    keySource
	remote *remoteSource

	locations []location
	extractor *extractor

	forward         bool
	payloadHeader   string
	padPayload      bool
	payloadMeta     string
	headerMeta      string
	spaceDelimited  []string
	claimHeaders    []claimHeader
	clearRouteCache bool
}

// claimHeader is one claim_to_headers entry.
type claimHeader struct {
	header string // canonical
	path   []string
}

func compileProvider(name string, pb *jwtauthnv3.JwtProvider, env filters.Env, counters *counters, opts options) (*provider, error) {
	p := &provider{
		name:            name,
		issuer:          pb.GetIssuer(),
		requireExp:      pb.GetRequireExpiration(),
		skew:            int64(pb.GetClockSkewSeconds()),
		forward:         pb.GetForward(),
		payloadHeader:   canonicalOrEmpty(pb.GetForwardPayloadHeader()),
		padPayload:      pb.GetPadForwardPayloadHeader(),
		payloadMeta:     pb.GetPayloadInMetadata(),
		headerMeta:      pb.GetHeaderInMetadata(),
		spaceDelimited:  pb.GetNormalizePayloadInMetadata().GetSpaceDelimitedClaims(),
		clearRouteCache: pb.GetClearRouteCache(),
	}
	if p.skew == 0 {
		p.skew = defaultClockSkew
	}
	if c := pb.GetJwtCacheConfig(); c != nil {
		p.cache = newTokenCache(int(c.GetJwtCacheSize()), int(c.GetJwtMaxTokenSize()))
	} else {
		p.verified = newVerifiedCache()
	}
	for _, a := range pb.GetAudiences() {
		p.audiences = append(p.audiences, normalizeAudience(a))
	}
	if s := pb.GetSubjects(); s != nil {
		m, err := matcher.CompileString(s)
		if err != nil {
			return nil, fmt.Errorf("subjects: %w", err)
		}
		p.subjects = &m
	}
	if d := pb.GetMaxLifetime(); d != nil {
		p.maxLifetime = int64(d.AsDuration() / time.Second)
	}
	for i, c := range pb.GetClaimToHeaders() {
		if c.GetHeaderName() == "" {
			return nil, fmt.Errorf("claim_to_headers[%d].header_name: must not be empty", i)
		}
		path := strings.Split(c.GetClaimName(), ".")
		if len(c.GetClaimPath()) > 0 {
			path = path[:0]
			for _, s := range c.GetClaimPath() {
				path = append(path, s.GetKey())
			}
		}
		if len(path) == 0 || path[0] == "" {
			return nil, fmt.Errorf("claim_to_headers[%d].claim_name: must not be empty", i)
		}
		p.claimHeaders = append(p.claimHeaders, claimHeader{header: textproto.CanonicalMIMEHeaderKey(c.GetHeaderName()), path: path})
	}
	for i, h := range pb.GetFromHeaders() {
		if h.GetName() == "" {
			return nil, fmt.Errorf("from_headers[%d].name: must not be empty", i)
		}
	}
	p.locations = providerLocations(pb)

	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch s := pb.GetJwksSourceSpecifier().(type) {
	case *jwtauthnv3.JwtProvider_LocalJwks:
		data, err := readDataSource(s.LocalJwks)
		if err != nil {
			return nil, fmt.Errorf("local_jwks: %w", err)
		}
		ks, err := parseJWKS(data, true)
		if err != nil {
			log.Warn("provider has no usable local_jwks; its tokens fail verification", "provider", name, "error", err)
		}
		p.src = &localSource{ks: ks}
	case *jwtauthnv3.JwtProvider_RemoteJwks:
		r, err := compileRemote(name, s.RemoteJwks, env, log, counters, opts)
		if err != nil {
			return nil, fmt.Errorf("remote_jwks.%w", err)
		}
		p.src, p.remote = r, r
	default:
		return nil, fmt.Errorf("jwks_source_specifier: one of local_jwks or remote_jwks is required")
	}
	p.extractor = newExtractor([]*provider{p})
	return p, nil
}

func compileRemote(name string, pb *jwtauthnv3.RemoteJwks, env filters.Env, log *slog.Logger, c *counters, opts options) (*remoteSource, error) {
	u := pb.GetHttpUri()
	if u.GetUri() == "" {
		return nil, fmt.Errorf("http_uri.uri: must not be empty")
	}
	if !strings.HasPrefix(u.GetUri(), "http://") && !strings.HasPrefix(u.GetUri(), "https://") {
		return nil, fmt.Errorf("http_uri.uri: %q is not an http or https URL", u.GetUri())
	}
	if u.GetCluster() == "" {
		return nil, fmt.Errorf("http_uri.cluster: must name the cluster that reaches %s", u.GetUri())
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &remoteSource{
		provider: name, cluster: u.GetCluster(), uri: u.GetUri(),
		timeout: defaultFetchTimeout, cacheDuration: defaultCacheDuration, refetch: defaultRefetch,
		up: env.Upstream, log: log, fetched: c.fetchOK, failed: c.fetchFailed,
		ctx: ctx, cancel: cancel, maxJWKSBytes: maxJWKSBytes,
	}
	if t := u.GetTimeout(); t != nil && t.AsDuration() > 0 {
		r.timeout = t.AsDuration()
	}
	if d := pb.GetCacheDuration(); d != nil && d.AsDuration() > 0 {
		r.cacheDuration = d.AsDuration()
	}
	if d := pb.GetAsyncFetch().GetFailedRefetchDuration(); d != nil && d.AsDuration() > 0 {
		r.refetch = d.AsDuration()
	}
	if opts.refetch > 0 {
		r.refetch = opts.refetch
	}
	if rp := pb.GetRetryPolicy(); rp != nil {
		// Envoy's RetryPolicy: one retry unless num_retries says
		// otherwise, a 1s base interval, a max of ten times the base.
		r.retries = 1
		if n := rp.GetNumRetries(); n != nil {
			r.retries = int(n.GetValue())
		}
		r.backoffBase = time.Second
		if b := rp.GetRetryBackOff().GetBaseInterval(); b != nil && b.AsDuration() > 0 {
			r.backoffBase = b.AsDuration()
		}
		r.backMax = 10 * r.backoffBase
		if m := rp.GetRetryBackOff().GetMaxInterval(); m != nil && m.AsDuration() > 0 {
			if m.AsDuration() < r.backoffBase {
				cancel()
				return nil, fmt.Errorf("retry_policy.retry_back_off.max_interval: %v is less than base_interval %v", m.AsDuration(), r.backoffBase)
			}
			r.backMax = m.AsDuration()
		}
	}
	if pb.GetAsyncFetch() != nil {
		r.start()
	}
	return r, nil
}

func canonicalOrEmpty(h string) string {
	if h == "" {
		return ""
	}
	return textproto.CanonicalMIMEHeaderKey(h)
}

// normalizeAudience drops the scheme and a trailing slash, as
// jwt_verify_lib's CheckAudience, so "https://api.example.com/" and
// "api.example.com" are one audience.
func normalizeAudience(a string) string {
	a = strings.TrimPrefix(a, "http://")
	a = strings.TrimPrefix(a, "https://")
	return strings.TrimSuffix(a, "/")
}

// audienceAllowed reports whether one of the token's audiences is in
// want (normalized); an empty want checks nothing.
func audienceAllowed(want []string, aud []string) bool {
	if len(want) == 0 {
		return true
	}
	for _, a := range aud {
		a = normalizeAudience(a)
		for _, w := range want {
			if a == w {
				return true
			}
		}
	}
	return false
}
