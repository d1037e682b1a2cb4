package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	localv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// LocalTypeURL is the local rate limit filter's config type, also its
// per-route type.
const LocalTypeURL = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"

// LocalFilterName is the key the local filter reads its per-route config
// under, Envoy's conventional name for it.
const LocalFilterName = "envoy.filters.http.local_ratelimit"

// Headers of the IETF draft 03 Envoy emits with enable_x_ratelimit_headers.
const (
	hdrLimit     = "X-Ratelimit-Limit"
	hdrRemaining = "X-Ratelimit-Remaining"
	hdrReset     = "X-Ratelimit-Reset"
)

func init() {
	filters.Register(LocalTypeURL, buildLocal)
	filters.RegisterRouteConfig(LocalTypeURL, buildLocalRoute)
}

func buildLocal(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*localv3.LocalRateLimit)
	if !ok {
		return nil, fmt.Errorf("local_ratelimit: config is %T, want LocalRateLimit", cfg)
	}
	return NewLocal(pb, env)
}

func buildLocalRoute(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*localv3.LocalRateLimit)
	if !ok {
		return nil, fmt.Errorf("local_ratelimit: per-route config is %T, want LocalRateLimit", cfg)
	}
	return CompileLocal(pb)
}

// LocalFactory is the listener's local rate limit filter. The buckets
// live in the LocalConfig that applies to a request: the listener's, or
// the route's, which replaces it as in Envoy.
type LocalFactory struct {
	cfg           *LocalConfig
	stats         filters.Stats
	sourceCluster string
	counters      sync.Map // stat prefix -> *localCounters
	policies      policyCache
	// routeConfigs holds the first compiled route config of each
	// content: the one whose buckets count.
	routeConfigs sync.Map // LocalConfig.key -> *LocalConfig
	routeN       atomic.Int64
}

// maxRouteConfigs bounds routeConfigs; past it the map starts over
// (and with it the buckets), which only configs churning through
// thousands of distinct limits reach.
const maxRouteConfigs = 4096

// localCounters are Envoy's local rate limit stats, under
// <stat_prefix>.http_local_rate_limit. in the connection manager's scope.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/local_rate_limit_filter#statistics
type localCounters struct {
	enabled, enforced, rateLimited, ok filters.Counter
}

// NewLocal compiles the listener-level config.
func NewLocal(pb *localv3.LocalRateLimit, env filters.Env) (*LocalFactory, error) {
	c, err := CompileLocal(pb)
	if err != nil {
		return nil, err
	}
	return &LocalFactory{cfg: c, stats: env.Stats, sourceCluster: env.Node.GetCluster()}, nil
}

func (f *LocalFactory) countersFor(prefix string) *localCounters {
	if v, ok := f.counters.Load(prefix); ok {
		return v.(*localCounters)
	}
	p := prefix + ".http_local_rate_limit."
	c := &localCounters{enabled: nopCounter{}, enforced: nopCounter{}, rateLimited: nopCounter{}, ok: nopCounter{}}
	if f.stats != nil {
		c = &localCounters{
			enabled:     f.stats.Counter(p + "enabled"),
			enforced:    f.stats.Counter(p + "enforced"),
			rateLimited: f.stats.Counter(p + "rate_limited"),
			ok:          f.stats.Counter(p + "ok"),
		}
	}
	v, _ := f.counters.LoadOrStore(prefix, c)
	return v.(*localCounters)
}

type nopCounter struct{}

func (nopCounter) Inc()       {}
func (nopCounter) Add(uint64) {}

// settings is the route's config when it has one, else the listener's.
// A route's config is the first one compiled with its content, so that
// its buckets outlive route table pushes that leave it unchanged.
func (f *LocalFactory) settings(x *filters.Exchange) *LocalConfig {
	if r := x.MatchedRoute(); r != nil {
		if c, ok := r.PerFilterConfig(LocalFilterName).(*LocalConfig); ok && c != nil {
			return f.canonical(c)
		}
	}
	return f.cfg
}

func (f *LocalFactory) canonical(c *LocalConfig) *LocalConfig {
	if v, ok := f.routeConfigs.Load(c.key); ok {
		return v.(*LocalConfig)
	}
	if f.routeN.Add(1) > maxRouteConfigs {
		f.routeConfigs.Clear()
		f.routeN.Store(1)
	}
	v, _ := f.routeConfigs.LoadOrStore(c.key, c)
	return v.(*LocalConfig)
}

// NewFilter takes no part in streams the applying config does not
// enable: Envoy's filter_enabled defaults to off.
func (f *LocalFactory) NewFilter(x *filters.Exchange) any {
	c := f.settings(x)
	if c.enabled == nil || c.enabled.Numerator == 0 {
		return nil
	}
	return &localFilter{f: f}
}

// localFilter is one stream's local rate limit.
type localFilter struct {
	f *LocalFactory
	c *LocalConfig
	// The bucket the decision came from, for the x-ratelimit headers.
	spec      *bucketSpec
	remaining uint32
}

// OnRequestHeaders follows Envoy's decodeHeaders: count enabled, take a
// token from the matched descriptors' buckets and the default one, and
// answer 429 when one is empty and the limit is enforced.
func (fl *localFilter) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	c := fl.f.settings(x)
	fl.c = c
	if c.enabled == nil || !c.enabled.Sample() {
		return filters.Continue
	}
	st := fl.f.countersFor(c.statPrefix)
	st.enabled.Inc()
	allowed := fl.take(x, c, time.Now())
	if allowed {
		st.ok.Inc()
		return filters.Continue
	}
	st.rateLimited.Inc()
	if c.enforced == nil || !c.enforced.Sample() {
		c.notEnforcedHeaders.Apply(x.Request.Header, &x.Request.Authority, x)
		return filters.Continue
	}
	st.enforced.Inc()
	x.SendLocalReply(fl.reply(x, c))
	return filters.Stop
}

// take runs Envoy's LocalRateLimiterImpl::requestAllowed.
func (fl *localFilter) take(x *filters.Exchange, c *LocalConfig, now time.Time) bool {
	type match struct {
		b      *bucket
		shadow bool
	}
	var matched [4]match
	ms := matched[:0]
	if len(c.descriptors) > 0 {
		var buf [4]Descriptor
		for _, d := range fl.requestDescriptors(x, c, buf[:0]) {
			for j, ld := range c.descriptors {
				if !ld.match(d) {
					continue
				}
				var b *bucket
				if c.perConnection {
					b = c.connBuckets.get(connKey(x, strconv.Itoa(j)), ld.spec)
				} else {
					b = ld.bucketFor(d)
				}
				ms = append(ms, match{b: b, shadow: ld.shadow})
				break
			}
		}
		// Most restrictive first; c.descriptors is sorted so, and a
		// stable pass keeps that order across request descriptors.
		sortMatches(ms, func(a, b match) bool { return a.b.spec.fillRate() < b.b.spec.fillRate() })
	}
	for _, m := range ms {
		ok, left := m.b.take(now)
		if !ok && !m.shadow {
			fl.spec, fl.remaining = m.b.spec, 0
			return false
		}
		if fl.spec == nil {
			fl.spec, fl.remaining = m.b.spec, left
		}
	}
	if len(ms) > 0 && !c.consumeDefault {
		return true
	}
	def := c.bucket
	if c.perConnection && c.connSpec != nil {
		def = c.connBuckets.get(connKey(x, "default"), c.connSpec)
	}
	if def == nil {
		return true
	}
	ok, left := def.take(now)
	if len(ms) == 0 || !ok {
		fl.spec, fl.remaining = def.spec, left
	}
	return ok
}

func sortMatches[T any](s []T, less func(a, b T) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// connKey names a bucket of one downstream connection: by its id, or,
// for an exchange made without a listener, by its addresses (the
// remote address is per request behind trusted proxies, so it cannot
// name a connection).
func connKey(x *filters.Exchange, bucket string) string {
	if id := x.Downstream.ID; id != 0 {
		return strconv.FormatUint(id, 10) + "|" + bucket
	}
	return x.Downstream.RemoteAddr.String() + "|" + x.Downstream.LocalAddr.String() + "|" + bucket
}

// requestDescriptors are the descriptors the request produces: from the
// config's own rate_limits when it has them, else from the route's
// rate_limits of the config's stage and, per vh_rate_limits, the virtual
// host's.
func (fl *localFilter) requestDescriptors(x *filters.Exchange, c *LocalConfig, out []Descriptor) []Descriptor {
	r := &request{x: x, sourceCluster: fl.f.sourceCluster}
	if c.ownLimits {
		return descriptors(out, c.rateLimits, 0, false, r)
	}
	route, vhost := fl.f.policies.routeLimits(x)
	out = descriptors(out, route, c.stage, true, r)
	if includeVhost(c.vhOption, x, len(route) > 0) {
		out = descriptors(out, vhost, c.stage, true, r)
	}
	return out
}

// reply is the 429 (or configured status) local reply, with
// response_headers_to_add and the x-ratelimit headers. A gRPC request
// gets HTTP 200 with grpc-status UNAVAILABLE, or RESOURCE_EXHAUSTED with
// rate_limited_as_resource_exhausted.
func (fl *localFilter) reply(x *filters.Exchange, c *LocalConfig) filters.LocalReply {
	r := filters.LocalReply{Status: c.status, Body: "local_rate_limited", Header: http.Header{}, Details: "local_rate_limited", Flag: "RL"}
	if isGRPC(x.Request.Header) {
		code := "14"
		if c.resourceExhausted {
			code = "8"
		}
		r.Status, r.Body = http.StatusOK, ""
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Grpc-Status", code)
		r.Header.Set("Grpc-Message", "local_rate_limited")
	} else {
		r.Header.Set("Content-Type", "text/plain")
	}
	c.responseHeaders.Apply(r.Header, nil, x)
	fl.setRateLimitHeaders(r.Header, c, time.Now())
	if c.retryAfter && r.Status == http.StatusTooManyRequests && fl.spec != nil && r.Header.Get("Retry-After") == "" {
		r.Header.Set("Retry-After", strconv.FormatInt(max(1, ceilSeconds(fl.spec.resetIn(time.Now()))), 10))
	}
	return r
}

// OnResponseHeaders adds the x-ratelimit headers of the bucket the
// request was counted in, to upstream responses and local replies.
func (fl *localFilter) OnResponseHeaders(x *filters.Exchange, _ bool) filters.Status {
	if fl.c != nil && fl.c.xRateLimitHeaders && fl.spec != nil {
		if x.Response.Header == nil {
			x.Response.Header = make(http.Header)
		}
		fl.setRateLimitHeaders(x.Response.Header, fl.c, time.Now())
	}
	return filters.Continue
}

func (fl *localFilter) setRateLimitHeaders(h http.Header, c *LocalConfig, now time.Time) {
	if !c.xRateLimitHeaders || fl.spec == nil {
		return
	}
	h.Set(hdrLimit, strconv.FormatUint(uint64(fl.spec.max), 10))
	h.Set(hdrRemaining, strconv.FormatUint(uint64(fl.remaining), 10))
	h.Set(hdrReset, strconv.FormatInt(ceilSeconds(fl.spec.resetIn(now)), 10))
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
