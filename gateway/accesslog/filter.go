package accesslog

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/filters"
)

// filterFunc decides whether an exchange is logged.
type filterFunc func(x *filters.Exchange, end time.Time) bool

// HealthCheckNamespace and HealthCheckKey mark an exchange as a health
// check in its dynamic metadata (set to true by the health_check
// filter); not_health_check_filter drops such exchanges.
const (
	HealthCheckNamespace = "envoy.filters.http.health_check"
	HealthCheckKey       = "health_check"
)

// compileFilter compiles an AccessLogFilter. Runtime keys are ignored
// (Waygate has no runtime), so comparisons use their default values.
func compileFilter(f *accesslogv3.AccessLogFilter) (filterFunc, error) {
	switch v := f.GetFilterSpecifier().(type) {
	case *accesslogv3.AccessLogFilter_StatusCodeFilter:
		cmp, err := comparison(v.StatusCodeFilter.GetComparison())
		if err != nil {
			return nil, fmt.Errorf("status_code_filter.comparison: %w", err)
		}
		return func(x *filters.Exchange, _ time.Time) bool { return cmp(uint64(responseCode(x))) }, nil
	case *accesslogv3.AccessLogFilter_DurationFilter:
		cmp, err := comparison(v.DurationFilter.GetComparison())
		if err != nil {
			return nil, fmt.Errorf("duration_filter.comparison: %w", err)
		}
		return func(x *filters.Exchange, end time.Time) bool {
			d := end.Sub(x.Info.Start).Milliseconds()
			return d >= 0 && cmp(uint64(d))
		}, nil
	case *accesslogv3.AccessLogFilter_NotHealthCheckFilter:
		return func(x *filters.Exchange, _ time.Time) bool {
			hc, _ := x.Metadata[HealthCheckNamespace][HealthCheckKey].(bool)
			return !hc
		}, nil
	case *accesslogv3.AccessLogFilter_ResponseFlagFilter:
		want := v.ResponseFlagFilter.GetFlags()
		return func(x *filters.Exchange, _ time.Time) bool {
			if len(want) == 0 {
				return len(x.Info.ResponseFlags) > 0
			}
			for _, f := range x.Info.ResponseFlags {
				for _, w := range want {
					if f == w {
						return true
					}
				}
			}
			return false
		}, nil
	case *accesslogv3.AccessLogFilter_AndFilter:
		subs, err := compileFilters("and_filter", v.AndFilter.GetFilters())
		if err != nil {
			return nil, err
		}
		return func(x *filters.Exchange, end time.Time) bool {
			for _, s := range subs {
				if !s(x, end) {
					return false
				}
			}
			return true
		}, nil
	case *accesslogv3.AccessLogFilter_OrFilter:
		subs, err := compileFilters("or_filter", v.OrFilter.GetFilters())
		if err != nil {
			return nil, err
		}
		return func(x *filters.Exchange, end time.Time) bool {
			for _, s := range subs {
				if s(x, end) {
					return true
				}
			}
			return false
		}, nil
	case *accesslogv3.AccessLogFilter_HeaderFilter:
		m, err := headerMatcher(v.HeaderFilter.GetHeader())
		if err != nil {
			return nil, fmt.Errorf("header_filter.header: %w", err)
		}
		return m, nil
	case *accesslogv3.AccessLogFilter_RuntimeFilter:
		return runtimeFilter(v.RuntimeFilter), nil
	case *accesslogv3.AccessLogFilter_GrpcStatusFilter:
		return grpcStatusFilter(v.GrpcStatusFilter), nil
	case nil:
		return nil, errors.New("empty filter")
	}
	return nil, fmt.Errorf("unsupported filter %T (supported: status_code, duration, not_health_check, response_flag, header, runtime, grpc_status, and, or)", f.GetFilterSpecifier())
}

func compileFilters(field string, fs []*accesslogv3.AccessLogFilter) ([]filterFunc, error) {
	if len(fs) < 2 {
		return nil, fmt.Errorf("%s.filters: want at least 2 filters", field)
	}
	out := make([]filterFunc, len(fs))
	for i, f := range fs {
		c, err := compileFilter(f)
		if err != nil {
			return nil, fmt.Errorf("%s.filters[%d]: %w", field, i, err)
		}
		out[i] = c
	}
	return out, nil
}

func comparison(c *accesslogv3.ComparisonFilter) (func(uint64) bool, error) {
	if c == nil || c.GetValue() == nil {
		return nil, errors.New("value is required")
	}
	want := uint64(c.GetValue().GetDefaultValue())
	switch c.GetOp() {
	case accesslogv3.ComparisonFilter_EQ:
		return func(v uint64) bool { return v == want }, nil
	case accesslogv3.ComparisonFilter_GE:
		return func(v uint64) bool { return v >= want }, nil
	case accesslogv3.ComparisonFilter_LE:
		return func(v uint64) bool { return v <= want }, nil
	case accesslogv3.ComparisonFilter_NE:
		return func(v uint64) bool { return v != want }, nil
	}
	return nil, fmt.Errorf("unknown op %v", c.GetOp())
}

// headerMatcher compiles a route HeaderMatcher against request headers.
func headerMatcher(h *routev3.HeaderMatcher) (filterFunc, error) {
	if h.GetName() == "" {
		return nil, errors.New("name is required")
	}
	name := canonical(h.GetName())
	var match func(v string) bool
	switch m := h.GetHeaderMatchSpecifier().(type) {
	case nil:
		match = func(string) bool { return true }
	case *routev3.HeaderMatcher_PresentMatch:
		present := m.PresentMatch
		return func(x *filters.Exchange, _ time.Time) bool {
			_, ok := requestHeader(x, name)
			return (ok == present) != h.GetInvertMatch()
		}, nil
	case *routev3.HeaderMatcher_ExactMatch:
		match = func(v string) bool { return v == m.ExactMatch }
	case *routev3.HeaderMatcher_PrefixMatch:
		match = func(v string) bool { return strings.HasPrefix(v, m.PrefixMatch) }
	case *routev3.HeaderMatcher_SuffixMatch:
		match = func(v string) bool { return strings.HasSuffix(v, m.SuffixMatch) }
	case *routev3.HeaderMatcher_ContainsMatch:
		match = func(v string) bool { return strings.Contains(v, m.ContainsMatch) }
	case *routev3.HeaderMatcher_SafeRegexMatch:
		re, err := regexp.Compile("^(?:" + m.SafeRegexMatch.GetRegex() + ")$")
		if err != nil {
			return nil, fmt.Errorf("safe_regex_match: %w", err)
		}
		match = re.MatchString
	case *routev3.HeaderMatcher_RangeMatch:
		lo, hi := m.RangeMatch.GetStart(), m.RangeMatch.GetEnd()
		match = func(v string) bool {
			n, err := strconv.ParseInt(v, 10, 64)
			return err == nil && n >= lo && n < hi
		}
	case *routev3.HeaderMatcher_StringMatch:
		sm, err := stringMatcher(m.StringMatch)
		if err != nil {
			return nil, fmt.Errorf("string_match: %w", err)
		}
		match = sm
	default:
		return nil, fmt.Errorf("unsupported match %T", m)
	}
	invert, missingEmpty := h.GetInvertMatch(), h.GetTreatMissingHeaderAsEmpty()
	return func(x *filters.Exchange, _ time.Time) bool {
		v, ok := requestHeader(x, name)
		if !ok && !missingEmpty {
			return false
		}
		return match(v) != invert
	}, nil
}

func stringMatcher(m *matcherv3.StringMatcher) (func(string) bool, error) {
	fold := m.GetIgnoreCase()
	norm := func(s string) string {
		if fold {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		want := norm(p.Exact)
		return func(v string) bool { return norm(v) == want }, nil
	case *matcherv3.StringMatcher_Prefix:
		want := norm(p.Prefix)
		return func(v string) bool { return strings.HasPrefix(norm(v), want) }, nil
	case *matcherv3.StringMatcher_Suffix:
		want := norm(p.Suffix)
		return func(v string) bool { return strings.HasSuffix(norm(v), want) }, nil
	case *matcherv3.StringMatcher_Contains:
		want := norm(p.Contains)
		return func(v string) bool { return strings.Contains(norm(v), want) }, nil
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		if err != nil {
			return nil, err
		}
		return re.MatchString, nil
	}
	return nil, fmt.Errorf("unsupported pattern %T", m.GetMatchPattern())
}

// runtimeFilter samples percent_sampled of the exchanges. Without
// use_independent_randomness the decision hashes the request id, so every
// log of one request (gateway and sidecars) agrees, as Envoy's does.
func runtimeFilter(r *accesslogv3.RuntimeFilter) filterFunc {
	p := r.GetPercentSampled()
	var denom uint64 = 100
	switch p.GetDenominator() {
	case typev3.FractionalPercent_TEN_THOUSAND:
		denom = 10000
	case typev3.FractionalPercent_MILLION:
		denom = 1000000
	}
	num := uint64(p.GetNumerator())
	independent := r.GetUseIndependentRandomness()
	return func(x *filters.Exchange, _ time.Time) bool {
		var v uint64
		if id := x.Request.ID; id != "" && !independent {
			h := fnv.New64a()
			h.Write([]byte(id))
			v = h.Sum64()
		} else {
			v = rand.Uint64()
		}
		return v%denom < num
	}
}

// grpcStatusFilter reads grpc-status from the trailers (or the headers
// of a trailers-only response); without one it maps the HTTP status as
// gRPC's HTTP-to-status mapping does.
func grpcStatusFilter(g *accesslogv3.GrpcStatusFilter) filterFunc {
	want := make(map[int]bool, len(g.GetStatuses()))
	for _, s := range g.GetStatuses() {
		want[int(s)] = true
	}
	exclude := g.GetExclude()
	return func(x *filters.Exchange, _ time.Time) bool {
		code, ok := grpcStatus(x)
		if !ok {
			return false
		}
		return want[code] != exclude
	}
}

func grpcStatus(x *filters.Exchange) (int, bool) {
	for _, h := range [][]string{x.Response.Trailer["Grpc-Status"], x.Response.Header["Grpc-Status"]} {
		if len(h) > 0 {
			n, err := strconv.Atoi(h[0])
			return n, err == nil
		}
	}
	switch responseCode(x) {
	case 0:
		return 0, false
	case 200:
		return 2, true // a gRPC response without grpc-status is UNKNOWN
	case 400:
		return 13, true
	case 401:
		return 16, true
	case 403:
		return 7, true
	case 404:
		return 12, true
	case 429, 502, 503, 504:
		return 14, true
	}
	return 2, true
}
