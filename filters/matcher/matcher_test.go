package matcher

import (
	"net/http"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/filters"
)

func withFold(m *matcherv3.StringMatcher, fold bool) *matcherv3.StringMatcher {
	m.IgnoreCase = fold
	return m
}

func TestString(t *testing.T) {
	re := func(r string) *matcherv3.StringMatcher_SafeRegex {
		return &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: r}}
	}
	for _, tc := range []struct {
		name string
		m    *matcherv3.StringMatcher
		in   string
		want bool
	}{
		{"exact", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "abc"}}, false), "abc", true},
		{"exact is case sensitive", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "abc"}}, false), "ABC", false},
		{"exact ignoring case", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "abc"}}, true), "ABC", true},
		{"prefix", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "/api"}}, false), "/api/v1", true},
		{"prefix ignoring case", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "/API"}}, true), "/api/v1", true},
		{"suffix", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: ".com"}}, false), "a.com", true},
		{"suffix miss", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: ".com"}}, false), "a.org", false},
		{"contains", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: "mid"}}, false), "amidst", true},
		{"contains ignoring case", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: "MID"}}, true), "amidst", true},
		{"regex matches whole value", withFold(&matcherv3.StringMatcher{MatchPattern: re("[0-9]+")}, false), "123", true},
		{"regex is anchored", withFold(&matcherv3.StringMatcher{MatchPattern: re("[0-9]+")}, false), "a123", false},
		{"non-ASCII never folds", withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "é"}}, true), "É", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := CompileString(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Match(tc.in); got != tc.want {
				t.Errorf("Match(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestStringErrors(t *testing.T) {
	for _, tc := range []struct {
		m    *matcherv3.StringMatcher
		want string
	}{
		{nil, "match_pattern: one of"},
		{&matcherv3.StringMatcher{}, "match_pattern: one of"},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "("}}}, `safe_regex: regex "(": error parsing regexp: missing closing )`},
	} {
		if _, err := CompileString(tc.m); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("CompileString(%v) = %v, want prefix %q", tc.m, err, tc.want)
		}
	}
}

func TestHeader(t *testing.T) {
	req := &filters.Request{Method: "GET", Path: "/p", Authority: "a.example", Scheme: "https", Header: http.Header{
		"X-One":   {"1"},
		"X-Multi": {"a", "b"},
		"X-Num":   {"42"},
	}}
	exact := func(v string) *routev3.HeaderMatcher_StringMatch {
		return &routev3.HeaderMatcher_StringMatch{StringMatch: withFold(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}, false)}
	}
	for _, tc := range []struct {
		name string
		h    *routev3.HeaderMatcher
		want bool
	}{
		{"exact", &routev3.HeaderMatcher{Name: "x-one", HeaderMatchSpecifier: exact("1")}, true},
		{"repeated values are joined with commas", &routev3.HeaderMatcher{Name: "x-multi", HeaderMatchSpecifier: exact("a,b")}, true},
		{":method pseudo-header", &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: exact("GET")}, true},
		{":authority pseudo-header", &routev3.HeaderMatcher{Name: ":authority", HeaderMatchSpecifier: exact("a.example")}, true},
		{"host is :authority", &routev3.HeaderMatcher{Name: "host", HeaderMatchSpecifier: exact("a.example")}, true},
		{"no specifier checks presence", &routev3.HeaderMatcher{Name: "x-one"}, true},
		{"missing header does not match", &routev3.HeaderMatcher{Name: "x-none", HeaderMatchSpecifier: exact("")}, false},
		{"missing header inverted still does not match", &routev3.HeaderMatcher{Name: "x-none", HeaderMatchSpecifier: exact("v"), InvertMatch: true}, false},
		{"missing as empty", &routev3.HeaderMatcher{Name: "x-none", HeaderMatchSpecifier: exact(""), TreatMissingHeaderAsEmpty: true}, true},
		{"present_match false on a missing header", &routev3.HeaderMatcher{Name: "x-none", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}}, true},
		{"inverted present on a missing header", &routev3.HeaderMatcher{Name: "x-none", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}, InvertMatch: true}, true},
		{"range in", &routev3.HeaderMatcher{Name: "x-num", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 40, End: 43}}}, true},
		{"range end is exclusive", &routev3.HeaderMatcher{Name: "x-num", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 40, End: 42}}}, false},
		{"invert", &routev3.HeaderMatcher{Name: "x-one", HeaderMatchSpecifier: exact("2"), InvertMatch: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := CompileHeader(tc.h)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Match(req); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	p, err := CompilePercent(&typev3.FractionalPercent{Numerator: 25, Denominator: typev3.FractionalPercent_HUNDRED})
	if err != nil {
		t.Fatal(err)
	}
	if !p.SampleWith(124) || p.SampleWith(125) {
		t.Error("SampleWith must follow random % denominator < numerator")
	}
	n := 0
	for i := 0; i < 20000; i++ {
		if p.Sample() {
			n++
		}
	}
	// 25% of 20,000 is 5,000 with a standard deviation of about 61.
	if n < 4600 || n > 5400 {
		t.Errorf("%d of 20000 samples, want about 5000", n)
	}
	if (Percent{Numerator: 0, Denominator: 100}).Sample() || !(Percent{Numerator: 100, Denominator: 100}).Sample() {
		t.Error("0% and 100% must be certain")
	}
	if _, err := CompilePercent(&typev3.FractionalPercent{Denominator: 7}); err == nil {
		t.Error("an unknown denominator must be an error")
	}
}

func FuzzString(f *testing.F) {
	f.Add("a.*", "abc", true)
	f.Fuzz(func(t *testing.T, pattern, in string, fold bool) {
		for _, sm := range []*matcherv3.StringMatcher{
			{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: pattern}},
			{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: pattern}},
			{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: pattern}},
			{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: pattern}},
			{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: pattern}}},
		} {
			if m, err := CompileString(withFold(sm, fold)); err == nil {
				m.Match(in)
			}
		}
	})
}
