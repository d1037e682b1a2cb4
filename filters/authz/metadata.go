package authz

import (
	"fmt"
	"math"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/waygate/waygate/filters"
)

// metadataMatch is a compiled envoy.type.matcher.v3.MetadataMatcher over
// the exchange's dynamic metadata (Exchange.Metadata): the value at path
// under the filter namespace must satisfy the value matcher. It is how
// Istio's request.auth.* conditions read the claims jwt_authn verified.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/type/matcher/v3/metadata.proto
type metadataMatch struct {
	filter string
	path   []string
	value  valueMatch
	invert bool
}

func compileMetadataMatch(m *matcherv3.MetadataMatcher) (*metadataMatch, error) {
	if m.GetFilter() == "" {
		return nil, fmt.Errorf("filter: must name the metadata namespace, such as envoy.filters.http.jwt_authn")
	}
	if len(m.GetPath()) == 0 {
		return nil, fmt.Errorf("path: at least one key is required")
	}
	out := &metadataMatch{filter: m.GetFilter(), invert: m.GetInvert()}
	for i, seg := range m.GetPath() {
		k := seg.GetKey()
		if k == "" {
			return nil, fmt.Errorf("path[%d].key: must not be empty", i)
		}
		out.path = append(out.path, k)
	}
	if m.GetValue() == nil {
		return nil, fmt.Errorf("value: required")
	}
	v, err := compileValueMatch(m.GetValue())
	if err != nil {
		return nil, fmt.Errorf("value.%w", err)
	}
	out.value = v
	return out, nil
}

func (m *metadataMatch) match(x *filters.Exchange) bool { return m.matchMetadata(x.Metadata) }

func (m *metadataMatch) matchMetadata(md map[string]map[string]any) bool {
	v, ok := lookupMetadata(md, m.filter, m.path)
	return m.value.match(v, ok) != m.invert
}

// lookupMetadata walks path through nested maps, as Envoy's
// Metadata::metadataValue walks Struct fields.
func lookupMetadata(md map[string]map[string]any, ns string, path []string) (any, bool) {
	cur, ok := md[ns]
	if !ok {
		return nil, false
	}
	var v any
	for i, k := range path {
		if cur == nil {
			return nil, false
		}
		v, ok = cur[k]
		if !ok {
			return nil, false
		}
		if i < len(path)-1 {
			cur, _ = v.(map[string]any)
		}
	}
	return v, true
}

// valueMatch is a compiled envoy.type.matcher.v3.ValueMatcher over a Go
// value in the shape encoding/json decodes into (string, float64, bool,
// []any, map[string]any, nil); integer types are accepted as numbers.
type valueMatch struct {
	kind    valueKind
	str     stringMatch
	lo, hi  float64 // double range [lo, hi), or exact when lo == hi
	exact   bool
	b       bool
	present bool
	sub     []valueMatch // list one_of (one element) or or_match
}

type valueKind uint8

const (
	valNull valueKind = iota
	valDouble
	valString
	valBool
	valPresent
	valList
	valOr
)

func compileValueMatch(m *matcherv3.ValueMatcher) (valueMatch, error) {
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.ValueMatcher_NullMatch_:
		return valueMatch{kind: valNull}, nil
	case *matcherv3.ValueMatcher_DoubleMatch:
		v := valueMatch{kind: valDouble}
		switch d := p.DoubleMatch.GetMatchPattern().(type) {
		case *matcherv3.DoubleMatcher_Exact:
			v.lo, v.hi, v.exact = d.Exact, d.Exact, true
		case *matcherv3.DoubleMatcher_Range:
			v.lo, v.hi = d.Range.GetStart(), d.Range.GetEnd()
		default:
			return v, fmt.Errorf("double_match: exact or range is required")
		}
		return v, nil
	case *matcherv3.ValueMatcher_StringMatch:
		s, err := compileStringMatch(p.StringMatch)
		if err != nil {
			return valueMatch{}, fmt.Errorf("string_match.%w", err)
		}
		return valueMatch{kind: valString, str: s}, nil
	case *matcherv3.ValueMatcher_BoolMatch:
		return valueMatch{kind: valBool, b: p.BoolMatch}, nil
	case *matcherv3.ValueMatcher_PresentMatch:
		return valueMatch{kind: valPresent, present: p.PresentMatch}, nil
	case *matcherv3.ValueMatcher_ListMatch:
		one := p.ListMatch.GetOneOf()
		if one == nil {
			return valueMatch{}, fmt.Errorf("list_match.one_of: required")
		}
		sub, err := compileValueMatch(one)
		if err != nil {
			return valueMatch{}, fmt.Errorf("list_match.one_of.%w", err)
		}
		return valueMatch{kind: valList, sub: []valueMatch{sub}}, nil
	case *matcherv3.ValueMatcher_OrMatch:
		v := valueMatch{kind: valOr}
		for i, vm := range p.OrMatch.GetValueMatchers() {
			sub, err := compileValueMatch(vm)
			if err != nil {
				return v, fmt.Errorf("or_match.value_matchers[%d].%w", i, err)
			}
			v.sub = append(v.sub, sub)
		}
		if len(v.sub) < 2 {
			return v, fmt.Errorf("or_match.value_matchers: at least two are required")
		}
		return v, nil
	}
	return valueMatch{}, fmt.Errorf("match_pattern: one of null_match, double_match, string_match, bool_match, present_match, list_match or or_match is required")
}

// match follows Envoy's ValueMatcher semantics: present_match is true for
// any value that is set; a null value only matches null_match.
func (m *valueMatch) match(v any, ok bool) bool {
	if m.kind == valPresent {
		return ok == m.present
	}
	if !ok {
		return false
	}
	switch m.kind {
	case valNull:
		return v == nil
	case valString:
		s, isStr := v.(string)
		return isStr && m.str.match(s)
	case valBool:
		b, isBool := v.(bool)
		return isBool && b == m.b
	case valDouble:
		f, isNum := number(v)
		if !isNum {
			return false
		}
		if m.exact {
			return f == m.lo
		}
		return f >= m.lo && f < m.hi
	case valList:
		l, isList := v.([]any)
		if !isList {
			if ss, isStrs := v.([]string); isStrs {
				for _, s := range ss {
					if m.sub[0].match(s, true) {
						return true
					}
				}
			}
			return false
		}
		for _, e := range l {
			if m.sub[0].match(e, true) {
				return true
			}
		}
		return false
	case valOr:
		for i := range m.sub {
			if m.sub[i].match(v, true) {
				return true
			}
		}
		return false
	}
	return false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n)
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	}
	return 0, false
}

// MetadataMatcher is a compiled envoy.type.matcher.v3.MetadataMatcher
// over an exchange's dynamic metadata, for other filters' metadata
// conditions (ext_authz filter_enabled_metadata reads the shadow result
// of the RBAC filter istiod puts before it).
type MetadataMatcher struct{ m *metadataMatch }

// CompileMetadataMatcher compiles m; errors name the field path.
func CompileMetadataMatcher(m *matcherv3.MetadataMatcher) (*MetadataMatcher, error) {
	c, err := compileMetadataMatch(m)
	if err != nil {
		return nil, err
	}
	return &MetadataMatcher{c}, nil
}

// Matches reports whether the exchange's dynamic metadata matches.
func (m *MetadataMatcher) Matches(x *filters.Exchange) bool { return m.m.match(x) }

// MatchesMetadata reports whether dynamic metadata, by filter namespace
// as in Exchange.Metadata, matches.
func (m *MetadataMatcher) MatchesMetadata(md map[string]map[string]any) bool {
	return m.m.matchMetadata(md)
}
