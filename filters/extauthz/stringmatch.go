package extauthz

import (
	"fmt"
	"regexp"
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// stringMatch is a compiled envoy.type.matcher.v3.StringMatcher. Envoy's
// safe_regex is RE2 matched against the whole value, which is what Go's
// regexp gives once anchored. ignore_case compares with ASCII folding in
// place, so a match never allocates.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/type/matcher/v3/string.proto
type stringMatch struct {
	kind       stringKind
	value      string
	re         *regexp.Regexp
	ignoreCase bool
}

type stringKind uint8

const (
	strExact stringKind = iota
	strPrefix
	strSuffix
	strContains
	strRegex
)

func compileStringMatch(m *matcherv3.StringMatcher) (stringMatch, error) {
	s := stringMatch{ignoreCase: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		s.kind, s.value = strExact, p.Exact
	case *matcherv3.StringMatcher_Prefix:
		s.kind, s.value = strPrefix, p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		s.kind, s.value = strSuffix, p.Suffix
	case *matcherv3.StringMatcher_Contains:
		s.kind, s.value = strContains, p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := compileRegex(p.SafeRegex)
		if err != nil {
			return s, fmt.Errorf("safe_regex: %w", err)
		}
		s.kind, s.re = strRegex, re
	case *matcherv3.StringMatcher_Custom:
		return s, fmt.Errorf("custom: extension %q is not supported; use exact, prefix, suffix, contains or safe_regex", p.Custom.GetName())
	default:
		return s, fmt.Errorf("match_pattern: one of exact, prefix, suffix, contains or safe_regex is required")
	}
	if s.ignoreCase {
		s.value = strings.ToLower(s.value)
	}
	return s, nil
}

func compileRegex(r *matcherv3.RegexMatcher) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + r.GetRegex() + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %v (RE2 syntax is expected)", r.GetRegex(), err)
	}
	return re, nil
}

func (s *stringMatch) match(v string) bool {
	switch s.kind {
	case strRegex:
		return s.re.MatchString(v)
	case strExact:
		if s.ignoreCase {
			return len(v) == len(s.value) && foldEqual(v, s.value)
		}
		return v == s.value
	case strPrefix:
		if s.ignoreCase {
			return len(v) >= len(s.value) && foldEqual(v[:len(s.value)], s.value)
		}
		return strings.HasPrefix(v, s.value)
	case strSuffix:
		if s.ignoreCase {
			return len(v) >= len(s.value) && foldEqual(v[len(v)-len(s.value):], s.value)
		}
		return strings.HasSuffix(v, s.value)
	case strContains:
		if s.ignoreCase {
			for i := 0; i+len(s.value) <= len(v); i++ {
				if foldEqual(v[i:i+len(s.value)], s.value) {
					return true
				}
			}
			return false
		}
		return strings.Contains(v, s.value)
	}
	return false
}

// foldEqual compares a with the lower-case lower in ASCII, as Envoy's
// ignore_case does (absl::EqualsIgnoreCase); len(a) must equal len(lower).
func foldEqual(a, lower string) bool {
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
