package router

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/matcher"
)

// queryMatcher is a compiled QueryParameterMatcher: the parameter must be
// present and, with a string matcher, its first value must match. As in
// Envoy, present_match is a presence check whatever its value.
type queryMatcher struct {
	name   string
	str    matcher.String
	hasStr bool
}

func compileQueryMatcher(q *routev3.QueryParameterMatcher) (queryMatcher, error) {
	if q.GetName() == "" {
		return queryMatcher{}, errors.New("name: must not be empty")
	}
	m := queryMatcher{name: q.GetName()}
	if s, ok := q.GetQueryParameterMatchSpecifier().(*routev3.QueryParameterMatcher_StringMatch); ok {
		sm, err := matcher.CompileString(s.StringMatch)
		if err != nil {
			return m, fmt.Errorf("string_match.%w", err)
		}
		m.str, m.hasStr = sm, true
	}
	return m, nil
}

// match follows Envoy's ConfigUtility::QueryParameterMatcher.
func (m *queryMatcher) match(query string) bool {
	v, ok := queryValue(query, m.name)
	if !ok {
		return false
	}
	return !m.hasStr || m.str.Match(v)
}

// queryValue returns the first value of the parameter named name in the
// raw query (without "?"), percent-decoded as Envoy's
// parseAndDecodeQueryString does. It allocates only when a key or value
// needs decoding.
func queryValue(query, name string) (string, bool) {
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if k != name {
			if !strings.ContainsAny(k, "%+") || unescapeQuery(k) != name {
				continue
			}
		}
		if strings.ContainsAny(v, "%+") {
			v = unescapeQuery(v)
		}
		return v, true
	}
	return "", false
}

func unescapeQuery(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// splitPath cuts a request path into the path matched by routes (without
// query and fragment, as Envoy's removeQueryAndFragment) and the query.
func splitPath(p string) (path, query string) {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '?':
			path, query = p[:i], p[i+1:]
			if j := strings.IndexByte(query, '#'); j >= 0 {
				query = query[:j]
			}
			return path, query
		case '#':
			return p[:i], ""
		}
	}
	return p, ""
}

// cookieMatcher is a compiled RouteMatch.cookies entry.
type cookieMatcher struct {
	name   string
	str    matcher.String
	invert bool
}

func compileCookieMatcher(c *routev3.CookieMatcher) (cookieMatcher, error) {
	if c.GetName() == "" {
		return cookieMatcher{}, errors.New("name: must not be empty")
	}
	sm, err := matcher.CompileString(c.GetStringMatch())
	if err != nil {
		return cookieMatcher{}, fmt.Errorf("string_match.%w", err)
	}
	return cookieMatcher{name: c.GetName(), str: sm, invert: c.GetInvertMatch()}, nil
}

// match requires the cookie to be present; invert_match negates the
// value comparison only, as in Envoy.
func (m *cookieMatcher) match(req *filters.Request) bool {
	v, ok := cookieValue(req, m.name)
	if !ok {
		return false
	}
	return m.str.Match(v) != m.invert
}

// cookieValue finds a cookie in the request's Cookie headers without
// parsing them all.
func cookieValue(req *filters.Request, name string) (string, bool) {
	for _, line := range req.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if ok && k == name {
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, true
			}
		}
	}
	return "", false
}
