package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	commonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// Config type URLs of the global rate limit filter.
const (
	GlobalTypeURL         = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit"
	GlobalPerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute"
)

// GlobalFilterName is the name the global filter reads its per-route
// config and writes its dynamic metadata under.
const GlobalFilterName = "envoy.filters.http.ratelimit"

func init() {
	filters.Register(GlobalTypeURL, buildGlobal)
	filters.RegisterRouteConfig(GlobalPerRouteTypeURL, buildGlobalRoute)
}

func buildGlobal(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*rlv3.RateLimit)
	if !ok {
		return nil, fmt.Errorf("ratelimit: config is %T, want RateLimit", cfg)
	}
	return NewGlobal(pb, env)
}

func buildGlobalRoute(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*rlv3.RateLimitPerRoute)
	if !ok {
		return nil, fmt.Errorf("ratelimit: per-route config is %T, want RateLimitPerRoute", cfg)
	}
	return compileRoute(pb)
}

// GlobalFactory is the global rate limit filter of a listener. It owns
// the gRPC client of the rate limit service, closed with the factory.
type GlobalFactory struct {
	cfg           *globalConfig
	client        *rlsClient
	sourceCluster string
	policies      policyCache
	counters      globalCounters
}

// globalCounters count the service's answers. Envoy keeps them in the
// route's upstream cluster scope (cluster.<name>.ratelimit.ok); filters
// see the connection manager's scope only, so they are
// http.<stat_prefix>.ratelimit[.<filter stat_prefix>].ok and so on.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/rate_limit_filter#statistics
type globalCounters struct {
	ok, overLimit, errors, failureModeAllowed filters.Counter
}

// NewGlobal compiles the config and prepares (without connecting) the
// client of the rate limit service.
func NewGlobal(pb *rlv3.RateLimit, env filters.Env) (*GlobalFactory, error) {
	c, err := compileGlobal(pb)
	if err != nil {
		return nil, err
	}
	client, err := newRLSClient(env.Upstream, c.cluster, c.authority)
	if err != nil {
		return nil, err
	}
	f := &GlobalFactory{cfg: c, client: client, sourceCluster: env.Node.GetCluster()}
	p := "ratelimit."
	if c.statPrefix != "" {
		p += c.statPrefix + "."
	}
	counter := func(n string) filters.Counter {
		if env.Stats == nil {
			return nopCounter{}
		}
		return env.Stats.Counter(p + n)
	}
	f.counters = globalCounters{ok: counter("ok"), overLimit: counter("over_limit"), errors: counter("error"), failureModeAllowed: counter("failure_mode_allowed")}
	return f, nil
}

// Close closes the connection to the rate limit service.
func (f *GlobalFactory) Close() error { return f.client.Close() }

// NewFilter takes no part in streams without a route, or whose route,
// virtual host and config have no rate limits: nothing could be asked.
func (f *GlobalFactory) NewFilter(x *filters.Exchange) any {
	r := x.MatchedRoute()
	if r == nil {
		return nil
	}
	if !f.cfg.ownLimits {
		if _, ok := r.PerFilterConfig(GlobalFilterName).(*routeConfig); !ok {
			if route, vhost := f.policies.routeLimits(x); len(route)+len(vhost) == 0 {
				return nil
			}
		}
	}
	return &globalFilter{f: f}
}

type globalFilter struct {
	f *GlobalFactory
	// respHeaders are added to the response: the service's
	// response_headers_to_add and the x-ratelimit headers.
	respHeaders []*corev3.HeaderValue
}

var descriptorPool = sync.Pool{New: func() any { s := make([]Descriptor, 0, 4); return &s }}

// OnRequestHeaders follows Envoy's decodeHeaders: build the descriptors,
// ask the service (blocking the stream up to the timeout), then answer
// 429 when it says OVER_LIMIT, or let the request on.
func (fl *globalFilter) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	f := fl.f
	c := f.cfg
	if c.enabled != nil && !c.enabled.Sample() {
		return filters.Continue
	}
	if !c.matchesRequestType(x) {
		return filters.Continue
	}
	bufp := descriptorPool.Get().(*[]Descriptor)
	defer func() { *bufp = (*bufp)[:0]; descriptorPool.Put(bufp) }()
	domain, descs := fl.descriptors(x, (*bufp)[:0])
	if len(descs) == 0 {
		return filters.Continue
	}
	req := &rlsv3.RateLimitRequest{Domain: domain, HitsAddend: 1, Descriptors: make([]*commonv3.RateLimitDescriptor, len(descs))}
	for i, d := range descs {
		pd := &commonv3.RateLimitDescriptor{Entries: make([]*commonv3.RateLimitDescriptor_Entry, len(d))}
		for j, e := range d {
			pd.Entries[j] = &commonv3.RateLimitDescriptor_Entry{Key: e.Key, Value: e.Value}
		}
		req.Descriptors[i] = pd
	}
	ctx := x.Context
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	resp, err := f.client.rls.ShouldRateLimit(ctx, req)
	cancel()
	if err != nil || resp.GetOverallCode() == rlsv3.RateLimitResponse_UNKNOWN {
		f.counters.errors.Inc()
		if c.failureModeDeny {
			x.SendLocalReply(filters.LocalReply{Status: c.errorStatus, Header: http.Header{}, Details: "rate_limiter_error", Flag: "RLSE"})
			return filters.Stop
		}
		f.counters.failureModeAllowed.Inc()
		if x.Log != nil {
			x.Log.Debug("rate limit service failed; request allowed", "cluster", c.cluster, "err", err)
		}
		return filters.Continue
	}
	if md := resp.GetDynamicMetadata(); md != nil {
		for k, v := range md.AsMap() {
			x.SetMetadata(GlobalFilterName, k, v)
		}
	}
	if c.xRateLimitHeaders {
		fl.respHeaders = appendXRateLimit(fl.respHeaders, resp.GetStatuses())
	}
	if resp.GetOverallCode() == rlsv3.RateLimitResponse_OVER_LIMIT {
		f.counters.overLimit.Inc()
		if c.enforced == nil || c.enforced.Sample() {
			x.SendLocalReply(fl.reply(x, resp))
			return filters.Stop
		}
	} else {
		f.counters.ok.Inc()
	}
	if len(resp.GetRequestHeadersToAdd()) > 0 && x.Request.Header == nil {
		x.Request.Header = make(http.Header)
	}
	for _, h := range resp.GetRequestHeadersToAdd() {
		if h.GetKey() != "" && !strings.HasPrefix(h.GetKey(), ":") {
			x.Request.Header.Set(h.GetKey(), h.GetValue())
		}
	}
	fl.respHeaders = append(fl.respHeaders, resp.GetResponseHeadersToAdd()...)
	return filters.Continue
}

// matchesRequestType applies request_type: "internal" calls the service
// for requests marked x-envoy-internal only, "external" for the others.
func (c *globalConfig) matchesRequestType(x *filters.Exchange) bool {
	internal := x.Request.Header.Get("X-Envoy-Internal") == "true"
	switch c.requestType {
	case "internal":
		return internal
	case "external":
		return !internal
	}
	return true
}

// descriptors are the request's descriptors and the domain to ask in:
// the per-route config's rate_limits or, failing that, the filter's,
// or the route's of the filter's stage with the virtual host's per
// vh_rate_limits.
func (fl *globalFilter) descriptors(x *filters.Exchange, out []Descriptor) (string, []Descriptor) {
	f := fl.f
	c := f.cfg
	r := &request{x: x, sourceCluster: f.sourceCluster}
	domain := c.domain
	var vhOption int32
	if rc, ok := x.MatchedRoute().PerFilterConfig(GlobalFilterName).(*routeConfig); ok && rc != nil {
		if rc.domain != "" {
			domain = rc.domain
		}
		if rc.ownLimits {
			return domain, descriptors(out, rc.rateLimits, 0, false, r)
		}
		vhOption = rc.vhOption
	}
	if c.ownLimits {
		return domain, descriptors(out, c.rateLimits, 0, false, r)
	}
	route, vhost := f.policies.routeLimits(x)
	out = descriptors(out, route, c.stage, true, r)
	if includeVhost(vhOption, x, len(route) > 0) {
		out = descriptors(out, vhost, c.stage, true, r)
	}
	return domain, out
}

// reply is the over-limit local reply: the configured status (429),
// the service's body and headers, x-envoy-ratelimited, and for gRPC
// requests a grpc-status.
func (fl *globalFilter) reply(x *filters.Exchange, resp *rlsv3.RateLimitResponse) filters.LocalReply {
	c := fl.f.cfg
	r := filters.LocalReply{Status: c.limitedStatus, Body: string(resp.GetRawBody()), Header: http.Header{}, Details: "request_rate_limited", Flag: "RL"}
	for _, h := range resp.GetResponseHeadersToAdd() {
		r.Header.Add(h.GetKey(), h.GetValue())
	}
	c.responseHeaders.Apply(r.Header, nil, x)
	for _, h := range fl.respHeaders {
		r.Header.Set(h.GetKey(), h.GetValue())
	}
	fl.respHeaders = nil
	if !c.noEnvoyHeader {
		r.Header.Set("X-Envoy-Ratelimited", "true")
	}
	if c.retryAfter && r.Status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
		if reset := r.Header.Get(hdrReset); reset != "" {
			r.Header.Set("Retry-After", reset)
		}
	}
	if isGRPC(x.Request.Header) {
		code := "14"
		if c.resourceExhausted {
			code = "8"
		}
		r.Status, r.Body = http.StatusOK, ""
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Grpc-Status", code)
	}
	return r
}

// OnResponseHeaders adds the service's response_headers_to_add and the
// x-ratelimit headers to the upstream's response.
func (fl *globalFilter) OnResponseHeaders(x *filters.Exchange, _ bool) filters.Status {
	if len(fl.respHeaders) == 0 {
		return filters.Continue
	}
	if x.Response.Header == nil {
		x.Response.Header = make(http.Header)
	}
	for _, h := range fl.respHeaders {
		x.Response.Header.Set(h.GetKey(), h.GetValue())
	}
	return filters.Continue
}

// appendXRateLimit computes the draft 03 headers from the descriptor
// statuses as Envoy's XRateLimitHeaderUtils does: the status closest to
// its limit gives limit, remaining and reset, and the limit header lists
// every limit's quota policy with its window in seconds.
func appendXRateLimit(out []*corev3.HeaderValue, statuses []*rlsv3.RateLimitResponse_DescriptorStatus) []*corev3.HeaderValue {
	var min *rlsv3.RateLimitResponse_DescriptorStatus
	for _, s := range statuses {
		if s.GetCurrentLimit() == nil {
			continue
		}
		if min == nil || s.GetLimitRemaining() < min.GetLimitRemaining() {
			min = s
		}
	}
	if min == nil {
		return out
	}
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(min.GetCurrentLimit().GetRequestsPerUnit()), 10))
	for _, s := range statuses {
		l := s.GetCurrentLimit()
		if l == nil {
			continue
		}
		w := unitSeconds(l.GetUnit())
		if m := l.GetUnitMultiplier().GetValue(); m > 0 {
			w *= int64(m)
		}
		if w == 0 {
			continue
		}
		fmt.Fprintf(&b, ", %d;w=%d", l.GetRequestsPerUnit(), w)
		if l.GetName() != "" {
			fmt.Fprintf(&b, ";name=%q", l.GetName())
		}
	}
	out = append(out,
		&corev3.HeaderValue{Key: hdrLimit, Value: b.String()},
		&corev3.HeaderValue{Key: hdrRemaining, Value: strconv.FormatUint(uint64(min.GetLimitRemaining()), 10)})
	if d := min.GetDurationUntilReset(); d != nil {
		out = append(out, &corev3.HeaderValue{Key: hdrReset, Value: strconv.FormatInt(d.GetSeconds(), 10)})
	}
	return out
}

// unitSeconds is the length of a rate limit unit in seconds.
func unitSeconds(u rlsv3.RateLimitResponse_RateLimit_Unit) int64 {
	switch u {
	case rlsv3.RateLimitResponse_RateLimit_SECOND:
		return 1
	case rlsv3.RateLimitResponse_RateLimit_MINUTE:
		return 60
	case rlsv3.RateLimitResponse_RateLimit_HOUR:
		return 3600
	case rlsv3.RateLimitResponse_RateLimit_DAY:
		return 86400
	case rlsv3.RateLimitResponse_RateLimit_WEEK:
		return 7 * 86400
	case rlsv3.RateLimitResponse_RateLimit_MONTH:
		return 30 * 86400
	case rlsv3.RateLimitResponse_RateLimit_YEAR:
		return 365 * 86400
	}
	return 0
}
