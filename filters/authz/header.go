package authz

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/waygate/waygate/filters"
)

// headerMatch is a compiled envoy.config.route.v3.HeaderMatcher, evaluated
// as Envoy's HeaderUtility::matchHeaders does for RBAC's header permission
// and principal: several values of one header are joined with ","; a
// missing header never matches, except a present_match: false (or an
// inverted present_match: true), unless treat_missing_header_as_empty
// makes it the empty string.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#config-route-v3-headermatcher
type headerMatch struct {
	name         string // lower case, pseudo-headers with their colon
	canon        string // net/http's canonical form, to index Header without allocating
	kind         headerKind
	str          stringMatch
	start, end   int64 // range_match, [start, end)
	present      bool  // present_match value
	invert       bool
	missingEmpty bool
}

type headerKind uint8

const (
	hdrString headerKind = iota
	hdrRange
	hdrPresent
)

func compileHeaderMatch(h *routev3.HeaderMatcher) (*headerMatch, error) {
	m := &headerMatch{
		name:         strings.ToLower(h.GetName()),
		invert:       h.GetInvertMatch(),
		missingEmpty: h.GetTreatMissingHeaderAsEmpty(),
	}
	if m.name == "" {
		return nil, fmt.Errorf("name: must not be empty")
	}
	m.canon = http.CanonicalHeaderKey(m.name)
	var sm *matcherv3.StringMatcher
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case nil:
		// No specifier checks presence, as in Envoy.
		m.kind, m.present = hdrPresent, true
		return m, nil
	case *routev3.HeaderMatcher_PresentMatch:
		m.kind, m.present = hdrPresent, s.PresentMatch
		return m, nil
	case *routev3.HeaderMatcher_RangeMatch:
		m.kind, m.start, m.end = hdrRange, s.RangeMatch.GetStart(), s.RangeMatch.GetEnd()
		if m.start >= m.end {
			return nil, fmt.Errorf("range_match: start (%d) must be below end (%d)", m.start, m.end)
		}
		return m, nil
	case *routev3.HeaderMatcher_ExactMatch:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s.ExactMatch}}
	case *routev3.HeaderMatcher_PrefixMatch:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: s.PrefixMatch}}
	case *routev3.HeaderMatcher_SuffixMatch:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: s.SuffixMatch}}
	case *routev3.HeaderMatcher_ContainsMatch:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: s.ContainsMatch}}
	case *routev3.HeaderMatcher_SafeRegexMatch:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: s.SafeRegexMatch}}
	case *routev3.HeaderMatcher_StringMatch:
		sm = s.StringMatch
	}
	str, err := compileStringMatch(sm)
	if err != nil {
		return nil, fmt.Errorf("string_match.%w", err)
	}
	m.kind, m.str = hdrString, str
	return m, nil
}

func (m *headerMatch) match(r *filters.Request) bool {
	v, ok := headerValue(r, m.name, m.canon)
	if !ok {
		if !m.missingEmpty {
			return m.kind == hdrPresent && m.present == m.invert
		}
		v = ""
	}
	var matched bool
	switch m.kind {
	case hdrPresent:
		matched = m.present
	case hdrRange:
		n, err := strconv.ParseInt(v, 10, 64)
		matched = err == nil && n >= m.start && n < m.end
	default:
		matched = m.str.match(v)
	}
	return matched != m.invert
}

// headerValue reads a header the way an Envoy header map holds it:
// pseudo-headers from the request head, host as :authority, and repeated
// headers joined with ",".
func headerValue(r *filters.Request, name, canon string) (string, bool) {
	switch name {
	case ":method":
		return r.Method, r.Method != ""
	case ":path":
		return r.Path, r.Path != ""
	case ":authority", "host":
		return r.Authority, r.Authority != ""
	case ":scheme":
		return r.Scheme, r.Scheme != ""
	}
	vs := r.Header[canon]
	switch len(vs) {
	case 0:
		return "", false
	case 1:
		return vs[0], true
	}
	return strings.Join(vs, ","), true
}
