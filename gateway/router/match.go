package router

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/authz"
	"github.com/waygate/waygate/filters/matcher"
)

// pathKind is how a route matches the path.
type pathKind uint8

const (
	pathPrefix pathKind = iota
	pathExact
	pathRegex
	pathSeparatedPrefix
)

// triState is an optional boolean condition.
type triState uint8

const (
	triAny triState = iota
	triFalse
	triTrue
)

func newTriState(present bool, v bool) triState {
	switch {
	case !present:
		return triAny
	case v:
		return triTrue
	}
	return triFalse
}

func (t triState) ok(v bool) bool { return t == triAny || (t == triTrue) == v }

// routeMatch is a compiled envoy.config.route.v3.RouteMatch.
type routeMatch struct {
	kind       pathKind
	value      string // prefix or exact path
	ignoreCase bool
	re         *regexp.Regexp

	headers   []matcher.Header
	query     []queryMatcher
	cookies   []cookieMatcher
	grpc      bool
	presented triState
	validated triState
	// metadata are dynamic_metadata conditions, on what filters before
	// the router wrote (a route matched again after ClearRouteCache).
	metadata []*authz.MetadataMatcher
	fraction *fraction
}

func compileRouteMatch(m *routev3.RouteMatch) (routeMatch, error) {
	var rm routeMatch
	if m == nil {
		return rm, errors.New("match: must be set")
	}
	rm.ignoreCase = m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		rm.kind, rm.value = pathPrefix, p.Prefix
	case *routev3.RouteMatch_Path:
		rm.kind, rm.value = pathExact, p.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := matcher.CompileRegex(p.SafeRegex)
		if err != nil {
			return rm, fmt.Errorf("match.safe_regex: %w", err)
		}
		rm.kind, rm.re = pathRegex, re
	case *routev3.RouteMatch_PathSeparatedPrefix:
		v := p.PathSeparatedPrefix
		if v == "" || strings.HasSuffix(v, "/") || strings.ContainsAny(v, "?#") {
			return rm, fmt.Errorf("match.path_separated_prefix: %q must not be empty, end in / or contain ? or #", v)
		}
		rm.kind, rm.value = pathSeparatedPrefix, v
	case *routev3.RouteMatch_ConnectMatcher_:
		return rm, errors.New("match.connect_matcher: CONNECT routing is not supported; match CONNECT requests with a :method header matcher")
	case *routev3.RouteMatch_PathMatchPolicy:
		return rm, errors.New("match.path_match_policy: URI template matching is not supported; use prefix, path, path_separated_prefix or safe_regex")
	default:
		return rm, errors.New("match: one of prefix, path, path_separated_prefix or safe_regex is required")
	}
	var err error
	if rm.headers, err = matcher.CompileHeaders(m.GetHeaders(), "match.headers"); err != nil {
		return rm, err
	}
	for i, q := range m.GetQueryParameters() {
		qm, err := compileQueryMatcher(q)
		if err != nil {
			return rm, fmt.Errorf("match.query_parameters[%d].%w", i, err)
		}
		rm.query = append(rm.query, qm)
	}
	for i, c := range m.GetCookies() {
		cm, err := compileCookieMatcher(c)
		if err != nil {
			return rm, fmt.Errorf("match.cookies[%d].%w", i, err)
		}
		rm.cookies = append(rm.cookies, cm)
	}
	rm.grpc = m.GetGrpc() != nil
	if t := m.GetTlsContext(); t != nil {
		rm.presented = newTriState(t.GetPresented() != nil, t.GetPresented().GetValue())
		rm.validated = newTriState(t.GetValidated() != nil, t.GetValidated().GetValue())
	}
	for i, dm := range m.GetDynamicMetadata() {
		mm, err := authz.CompileMetadataMatcher(dm)
		if err != nil {
			return rm, fmt.Errorf("match.dynamic_metadata[%d].%w", i, err)
		}
		rm.metadata = append(rm.metadata, mm)
	}
	if f := m.GetRuntimeFraction(); f != nil {
		if rm.fraction, err = compileFraction(f); err != nil {
			return rm, fmt.Errorf("match.runtime_fraction: %w", err)
		}
	}
	return rm, nil
}

// matchPath reports whether path (without query) satisfies the path
// specifier.
func (m *routeMatch) matchPath(path string) bool {
	switch m.kind {
	case pathPrefix:
		if m.ignoreCase {
			return matcher.HasPrefixFold(path, m.value)
		}
		return strings.HasPrefix(path, m.value)
	case pathExact:
		if m.ignoreCase {
			return matcher.EqualFoldASCII(path, m.value)
		}
		return path == m.value
	case pathRegex:
		return m.re.MatchString(path)
	case pathSeparatedPrefix:
		var ok bool
		if m.ignoreCase {
			ok = matcher.HasPrefixFold(path, m.value)
		} else {
			ok = strings.HasPrefix(path, m.value)
		}
		return ok && (len(path) == len(m.value) || path[len(m.value)] == '/')
	}
	return false
}

// matchRest checks every condition except the path, in Envoy's order.
func (m *routeMatch) matchRest(req *filters.Request, conn *filters.Connection, md map[string]map[string]any, query string, random uint64) bool {
	if !matcher.MatchAll(m.headers, req) {
		return false
	}
	for i := range m.query {
		if !m.query[i].match(query) {
			return false
		}
	}
	for i := range m.cookies {
		if !m.cookies[i].match(req) {
			return false
		}
	}
	if m.grpc && !isGrpc(req) {
		return false
	}
	if m.presented != triAny || m.validated != triAny {
		var presented, validated bool
		if conn != nil && conn.TLS != nil {
			presented = len(conn.TLS.PeerCertificates) > 0
			validated = len(conn.TLS.VerifiedChains) > 0
		}
		if !m.presented.ok(presented) || !m.validated.ok(validated) {
			return false
		}
	}
	for _, mm := range m.metadata {
		if !mm.MatchesMetadata(md) {
			return false
		}
	}
	if m.fraction != nil && !m.fraction.sample(random) {
		return false
	}
	return true
}

// isGrpc follows Envoy's Grpc::Common::isGrpcRequestHeaders.
func isGrpc(req *filters.Request) bool {
	vs := req.Header["Content-Type"]
	if len(vs) == 0 {
		return false
	}
	ct := vs[0]
	const g = "application/grpc"
	if !matcher.HasPrefixFold(ct, g) {
		return false
	}
	return len(ct) == len(g) || ct[len(g)] == '+' || ct[len(g)] == ';'
}

// fraction is a compiled RuntimeFractionalPercent. Waygate has no runtime
// layer, so the default value is the value.
type fraction struct {
	numerator, denominator uint64
}

func compileFraction(f *corev3.RuntimeFractionalPercent) (*fraction, error) {
	return newFraction(f.GetDefaultValue())
}

func newFraction(p *typev3.FractionalPercent) (*fraction, error) {
	if p == nil {
		return nil, errors.New("default_value: must be set")
	}
	var d uint64
	switch p.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		d = 100
	case typev3.FractionalPercent_TEN_THOUSAND:
		d = 10000
	case typev3.FractionalPercent_MILLION:
		d = 1000000
	default:
		return nil, fmt.Errorf("denominator: unknown value %v", p.GetDenominator())
	}
	return &fraction{numerator: uint64(p.GetNumerator()), denominator: d}, nil
}

// sample follows Envoy's Runtime::featureEnabled: random % denominator <
// numerator.
func (f *fraction) sample(random uint64) bool {
	return random%f.denominator < f.numerator
}
