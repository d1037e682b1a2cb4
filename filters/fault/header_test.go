package fault

import (
	"net/http"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/filters"
)

func regex(re string) *matcherv3.RegexMatcher { return &matcherv3.RegexMatcher{Regex: re} }

func TestHeaderMatch(t *testing.T) {
	req := &filters.Request{
		Method: "POST", Path: "/api/v1/ratings?x=1", Authority: "bookinfo.example.com", Scheme: "https",
		Header: http.Header{
			"End-User": {"jason"},
			"X-Multi":  {"a", "b"},
			"X-Num":    {"42"},
			"X-Empty":  {""},
		},
	}
	str := func(m *matcherv3.StringMatcher) *routev3.HeaderMatcher_StringMatch {
		return &routev3.HeaderMatcher_StringMatch{StringMatch: m}
	}
	tests := []struct {
		name string
		m    *routev3.HeaderMatcher
		want bool
	}{
		{"exact", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "jason"}}, true},
		{"exact is case sensitive", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "Jason"}}, false},
		{"exact inverted", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "jason"}, InvertMatch: true}, false},
		{"prefix", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_PrefixMatch{PrefixMatch: "ja"}}, true},
		{"suffix", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_SuffixMatch{SuffixMatch: "son"}}, true},
		{"contains", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_ContainsMatch{ContainsMatch: "aso"}}, true},
		{"regex is a full match", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: regex("jas")}}, false},
		{"regex", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: regex("j.*n")}}, true},
		{"string match ignore case", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: str(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "JASON"}, IgnoreCase: true})}, true},
		{"string match prefix", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: str(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "jx"}})}, false},
		{"present", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}, true},
		{"no specifier checks presence", &routev3.HeaderMatcher{Name: "end-user"}, true},
		{"no specifier, header missing", &routev3.HeaderMatcher{Name: "x-missing"}, false},
		{"present false, header missing", &routev3.HeaderMatcher{Name: "x-missing", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}}, true},
		{"present false, header there", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}}, false},
		{"present inverted, header missing", &routev3.HeaderMatcher{Name: "x-missing", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}, InvertMatch: true}, true},
		{"missing header never matches an inverted exact", &routev3.HeaderMatcher{Name: "x-missing", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "a"}, InvertMatch: true}, false},
		{"missing header treated as empty", &routev3.HeaderMatcher{Name: "x-missing", HeaderMatchSpecifier: &routev3.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: regex("^$")}, TreatMissingHeaderAsEmpty: true}, true},
		{"empty value exact", &routev3.HeaderMatcher{Name: "x-empty", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: ""}}, true},
		{"repeated header joined", &routev3.HeaderMatcher{Name: "x-multi", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "a,b"}}, true},
		{"range inside", &routev3.HeaderMatcher{Name: "x-num", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 40, End: 43}}}, true},
		{"range end excluded", &routev3.HeaderMatcher{Name: "x-num", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 0, End: 42}}}, false},
		{"range not a number", &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 0, End: 42}}}, false},
		{":method", &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "POST"}}, true},
		{":path", &routev3.HeaderMatcher{Name: ":path", HeaderMatchSpecifier: &routev3.HeaderMatcher_PrefixMatch{PrefixMatch: "/api/"}}, true},
		{":authority", &routev3.HeaderMatcher{Name: ":authority", HeaderMatchSpecifier: &routev3.HeaderMatcher_SuffixMatch{SuffixMatch: ".example.com"}}, true},
		{"host is :authority", &routev3.HeaderMatcher{Name: "Host", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "bookinfo.example.com"}}, true},
		{":scheme", &routev3.HeaderMatcher{Name: ":scheme", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "https"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := compileHeaderMatch(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Match(req); got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
}
