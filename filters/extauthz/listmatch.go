package extauthz

import (
	"fmt"
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// listMatch is a compiled envoy.type.matcher.v3.ListStringMatcher over
// header names: a name is allowed when any pattern matches it. Header
// names are compared in lower case, as Envoy holds them.
type listMatch []stringMatch

func compileList(l *matcherv3.ListStringMatcher) (listMatch, error) {
	if l == nil {
		return nil, nil
	}
	out := make(listMatch, 0, len(l.GetPatterns()))
	for i, p := range l.GetPatterns() {
		s, err := compileStringMatch(p)
		if err != nil {
			return nil, fmt.Errorf("patterns[%d].%w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// matches reports whether the lower-cased name matches a pattern.
func (l listMatch) matches(name string) bool {
	name = strings.ToLower(name)
	for i := range l {
		if l[i].match(name) {
			return true
		}
	}
	return false
}
