// Package matcher compiles Envoy's matcher protos (StringMatcher,
// RegexMatcher, HeaderMatcher, FractionalPercent) once, for the router and
// every filter that matches on requests, so they all agree with Envoy on
// case folding, full-match regexes and missing headers.
//
// See https://www.envoyproxy.io/docs/envoy/latest/api-v3/type/matcher/v3/string.proto
package matcher

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// stringKind is the way a String compares.
type stringKind uint8

const (
	strExact stringKind = iota
	strPrefix
	strSuffix
	strContains
	strRegex
)

// String is a compiled envoy.type.matcher.v3.StringMatcher.
type String struct {
	kind       stringKind
	value      string
	ignoreCase bool
	re         *regexp.Regexp
}

// CompileString compiles m. ignore_case has no effect on safe_regex,
// as in Envoy.
func CompileString(m *matcherv3.StringMatcher) (String, error) {
	if m == nil {
		return String{}, errors.New("match_pattern: one of exact, prefix, suffix, contains or safe_regex is required")
	}
	sm := String{ignoreCase: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		sm.kind, sm.value = strExact, p.Exact
	case *matcherv3.StringMatcher_Prefix:
		sm.kind, sm.value = strPrefix, p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		sm.kind, sm.value = strSuffix, p.Suffix
	case *matcherv3.StringMatcher_Contains:
		sm.kind, sm.value = strContains, p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := CompileRegex(p.SafeRegex)
		if err != nil {
			return sm, fmt.Errorf("safe_regex: %w", err)
		}
		sm.kind, sm.re = strRegex, re
	case *matcherv3.StringMatcher_Custom:
		return sm, fmt.Errorf("custom: extension %q is not supported; use exact, prefix, suffix, contains or safe_regex", p.Custom.GetName())
	default:
		return sm, errors.New("match_pattern: one of exact, prefix, suffix, contains or safe_regex is required")
	}
	return sm, nil
}

// Match reports whether v matches.
func (m *String) Match(v string) bool {
	switch m.kind {
	case strExact:
		if m.ignoreCase {
			return EqualFoldASCII(v, m.value)
		}
		return v == m.value
	case strPrefix:
		if m.ignoreCase {
			return HasPrefixFold(v, m.value)
		}
		return strings.HasPrefix(v, m.value)
	case strSuffix:
		if m.ignoreCase {
			return len(v) >= len(m.value) && EqualFoldASCII(v[len(v)-len(m.value):], m.value)
		}
		return strings.HasSuffix(v, m.value)
	case strContains:
		if m.ignoreCase {
			return ContainsFold(v, m.value)
		}
		return strings.Contains(v, m.value)
	case strRegex:
		return m.re.MatchString(v)
	}
	return false
}

// CompileRegex compiles an Envoy RegexMatcher so that it must match
// the whole input, as Envoy's safe_regex does. Go's regexp implements the
// RE2 syntax Envoy's google_re2 engine accepts.
func CompileRegex(m *matcherv3.RegexMatcher) (*regexp.Regexp, error) {
	if m == nil {
		return nil, errors.New("must be set")
	}
	re, err := regexp.Compile(`^(?:` + m.GetRegex() + `)$`)
	if err != nil {
		// Report the expression as written, not the anchored form.
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("regex %q: error parsing regexp: %v", m.GetRegex(), se.Code)
		}
		return nil, fmt.Errorf("regex %q: %v", m.GetRegex(), err)
	}
	return re, nil
}

// HasPrefixFold is strings.HasPrefix ignoring ASCII case.
func HasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && EqualFoldASCII(s[:len(prefix)], prefix)
}

// (no lower-cased copies are allocated)
// without allocating lower-cased copies.
// ContainsFold reports whether sub is within s, ignoring ASCII case.
func ContainsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if EqualFoldASCII(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// EqualFoldASCII compares ignoring ASCII case only, as Envoy's
// absl::EqualsIgnoreCase does: non-ASCII bytes must be identical.
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Exact returns a String matching exactly v.
func Exact(v string) String { return String{kind: strExact, value: v} }

// Prefix returns a String matching values starting with v.
func Prefix(v string) String { return String{kind: strPrefix, value: v} }

// Suffix returns a String matching values ending with v.
func Suffix(v string) String { return String{kind: strSuffix, value: v} }

// Contains returns a String matching values containing v.
func Contains(v string) String { return String{kind: strContains, value: v} }

// Regex returns a String matching re.
func Regex(re *regexp.Regexp) String { return String{kind: strRegex, re: re} }
