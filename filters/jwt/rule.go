package jwt

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/matcher"
)

// rule is a compiled RequirementRule: the first rule whose match fits the
// request decides its requirement; a request no rule matches is not
// checked.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto#extensions-filters-http-jwt-authn-v3-requirementrule
type rule struct {
	match routeMatch
	v     verifier // nil when the rule names a requirement_map entry missing
}

// routeMatch is the part of Envoy's RouteMatch a rule uses: the path
// (prefix on the whole :path, exact path and safe_regex on the path
// without its query, path_separated_prefix), case_sensitive, headers and
// query_parameters.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#config-route-v3-routematch
type routeMatch struct {
	kind          pathKind
	value         string
	re            *regexp.Regexp
	caseSensitive bool
	headers       []matcher.Header
	query         []queryMatch
}

type pathKind uint8

const (
	pathPrefix pathKind = iota
	pathExact
	pathRegex
	pathSeparated
)

type queryMatch struct {
	name    string
	present bool // present_match, or no string_match
	str     *matcher.String
}

func compileRouteMatch(m *routev3.RouteMatch) (routeMatch, error) {
	rm := routeMatch{caseSensitive: m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()}
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		rm.kind, rm.value = pathPrefix, p.Prefix
	case *routev3.RouteMatch_Path:
		rm.kind, rm.value = pathExact, p.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := matcher.CompileRegex(p.SafeRegex)
		if err != nil {
			return rm, fmt.Errorf("safe_regex: %w", err)
		}
		rm.kind, rm.re = pathRegex, re
	case *routev3.RouteMatch_PathSeparatedPrefix:
		rm.kind, rm.value = pathSeparated, p.PathSeparatedPrefix
	default:
		return rm, fmt.Errorf("path_specifier: one of prefix, path, safe_regex or path_separated_prefix is required, got %T", m.GetPathSpecifier())
	}
	if !rm.caseSensitive {
		rm.value = strings.ToLower(rm.value)
	}
	hs, err := matcher.CompileHeaders(m.GetHeaders(), "headers")
	if err != nil {
		return rm, err
	}
	rm.headers = hs
	for i, q := range m.GetQueryParameters() {
		qm := queryMatch{name: q.GetName()}
		if sm := q.GetStringMatch(); sm != nil {
			s, err := matcher.CompileString(sm)
			if err != nil {
				return rm, fmt.Errorf("query_parameters[%d].string_match: %w", i, err)
			}
			qm.str = &s
		} else {
			qm.present = true
		}
		rm.query = append(rm.query, qm)
	}
	return rm, nil
}

func (m *routeMatch) matches(req *filters.Request) bool {
	full := req.Path
	path, rawQuery, _ := strings.Cut(full, "?")
	switch m.kind {
	case pathPrefix:
		if !m.hasPrefix(full, m.value) {
			return false
		}
	case pathExact:
		if !m.equal(path, m.value) {
			return false
		}
	case pathRegex:
		if !m.re.MatchString(path) {
			return false
		}
	case pathSeparated:
		if !m.hasPrefix(path, m.value) || (len(path) > len(m.value) && path[len(m.value)] != '/') {
			return false
		}
	}
	if !matcher.MatchAll(m.headers, req) {
		return false
	}
	if len(m.query) > 0 {
		q, _ := url.ParseQuery(rawQuery)
		for i := range m.query {
			qm := &m.query[i]
			vs, ok := q[qm.name]
			if !ok {
				return false
			}
			if !qm.present && (len(vs) == 0 || !qm.str.Match(vs[0])) {
				return false
			}
		}
	}
	return true
}

func (m *routeMatch) hasPrefix(s, prefix string) bool {
	if m.caseSensitive {
		return strings.HasPrefix(s, prefix)
	}
	return matcher.HasPrefixFold(s, prefix)
}

func (m *routeMatch) equal(a, b string) bool {
	if m.caseSensitive {
		return a == b
	}
	return matcher.EqualFoldASCII(a, b)
}
