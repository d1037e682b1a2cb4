package router

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// Rewrite is a compiled RegexMatchAndSubstitute: every non-overlapping
// match of the pattern is replaced by the substitution, as RE2's
// GlobalReplace does in Envoy. The substitution uses RE2's syntax: \0 to
// \9 are capture groups and \\ is a backslash; anything else after a
// backslash is a compile error.
type Rewrite struct {
	re    *regexp.Regexp
	parts []subPart
}

// subPart is literal text (group < 0) or a capture group reference.
type subPart struct {
	text  string
	group int
}

func compileRewrite(m *matcherv3.RegexMatchAndSubstitute) (*Rewrite, error) {
	if m == nil || m.GetPattern() == nil {
		return nil, errors.New("pattern: must be set")
	}
	re, err := regexp.Compile(m.GetPattern().GetRegex())
	if err != nil {
		return nil, fmt.Errorf("pattern: %w", err)
	}
	parts, err := parseSubstitution(m.GetSubstitution(), re.NumSubexp())
	if err != nil {
		return nil, fmt.Errorf("substitution: %w", err)
	}
	return &Rewrite{re: re, parts: parts}, nil
}

// parseSubstitution follows RE2::CheckRewriteString.
func parseSubstitution(s string, groups int) ([]subPart, error) {
	var parts []subPart
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			lit.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, fmt.Errorf("%q ends with a lone backslash; write \\\\ for a literal one", s)
		}
		switch d := s[i]; {
		case d == '\\':
			lit.WriteByte('\\')
		case d >= '0' && d <= '9':
			n := int(d - '0')
			if n > groups {
				return nil, fmt.Errorf("%q refers to \\%d but the pattern has %d capture groups", s, n, groups)
			}
			if lit.Len() > 0 {
				parts = append(parts, subPart{text: lit.String(), group: -1})
				lit.Reset()
			}
			parts = append(parts, subPart{group: n})
		default:
			return nil, fmt.Errorf("%q has invalid escape \\%c; use \\0-\\9 for groups and \\\\ for a backslash", s, d)
		}
	}
	if lit.Len() > 0 {
		parts = append(parts, subPart{text: lit.String(), group: -1})
	}
	return parts, nil
}

// Replace returns s with every match of the pattern substituted.
func (r *Rewrite) Replace(s string) string {
	ms := r.re.FindAllStringSubmatchIndex(s, -1)
	if ms == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range ms {
		b.WriteString(s[last:m[0]])
		for _, p := range r.parts {
			if p.group < 0 {
				b.WriteString(p.text)
			} else if m[2*p.group] >= 0 {
				b.WriteString(s[m[2*p.group]:m[2*p.group+1]])
			}
		}
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// String returns the pattern, for logs and admin output.
func (r *Rewrite) String() string { return r.re.String() }
