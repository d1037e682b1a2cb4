package router

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// stringKind is the way a stringMatcher compares.
type stringKind uint8

const (
	strExact stringKind = iota
	strPrefix
	strSuffix
	strContains
	strRegex
)

// stringMatcher is a compiled envoy.type.matcher.v3.StringMatcher.
type stringMatcher struct {
	kind       stringKind
	value      string
	ignoreCase bool
	re         *regexp.Regexp
}

// compileStringMatcher compiles m. ignore_case has no effect on safe_regex,
// as in Envoy.
func compileStringMatcher(m *matcherv3.StringMatcher) (stringMatcher, error) {
	if m == nil {
		return stringMatcher{}, errors.New("match_pattern: one of exact, prefix, suffix, contains or safe_regex is required")
	}
	sm := stringMatcher{ignoreCase: m.GetIgnoreCase()}
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
		re, err := compileFullRegex(p.SafeRegex)
		if err != nil {
			return sm, fmt.Errorf("safe_regex: %w", err)
		}
		sm.kind, sm.re = strRegex, re
	case *matcherv3.StringMatcher_Custom:
		return sm, errors.New("custom: string matcher extensions are not supported; use exact, prefix, suffix, contains or safe_regex")
	default:
		return sm, errors.New("match_pattern: one of exact, prefix, suffix, contains or safe_regex is required")
	}
	return sm, nil
}

func (m *stringMatcher) match(v string) bool {
	switch m.kind {
	case strExact:
		if m.ignoreCase {
			return equalFoldASCII(v, m.value)
		}
		return v == m.value
	case strPrefix:
		if m.ignoreCase {
			return hasPrefixFold(v, m.value)
		}
		return strings.HasPrefix(v, m.value)
	case strSuffix:
		if m.ignoreCase {
			return len(v) >= len(m.value) && equalFoldASCII(v[len(v)-len(m.value):], m.value)
		}
		return strings.HasSuffix(v, m.value)
	case strContains:
		if m.ignoreCase {
			return containsFold(v, m.value)
		}
		return strings.Contains(v, m.value)
	case strRegex:
		return m.re.MatchString(v)
	}
	return false
}

// compileFullRegex compiles an Envoy RegexMatcher so that it must match
// the whole input, as Envoy's safe_regex does. Go's regexp implements the
// RE2 syntax Envoy's google_re2 engine accepts.
func compileFullRegex(m *matcherv3.RegexMatcher) (*regexp.Regexp, error) {
	if m == nil {
		return nil, errors.New("must be set")
	}
	return regexp.Compile(`^(?:` + m.GetRegex() + `)$`)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && equalFoldASCII(s[:len(prefix)], prefix)
}

// containsFold reports whether sub is within s, ignoring ASCII case,
// without allocating lower-cased copies.
func containsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// equalFoldASCII compares ignoring ASCII case only, as Envoy's
// absl::EqualsIgnoreCase does: non-ASCII bytes must be identical.
func equalFoldASCII(a, b string) bool {
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
