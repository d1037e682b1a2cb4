package extauthz

import (
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/waygate/waygate/filters/matcher"
)

// stringMatch is a compiled envoy.type.matcher.v3.StringMatcher, shared
// with every other filter through filters/matcher.
type stringMatch struct{ matcher.String }

func compileStringMatch(m *matcherv3.StringMatcher) (stringMatch, error) {
	s, err := matcher.CompileString(m)
	return stringMatch{s}, err
}

func (s *stringMatch) match(v string) bool { return s.Match(v) }
