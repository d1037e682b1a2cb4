package translate

import (
	"testing"

	"istio.io/api/networking/v1alpha3"
)

func smExact(s string) *v1alpha3.StringMatch {
	return &v1alpha3.StringMatch{MatchType: &v1alpha3.StringMatch_Exact{Exact: s}}
}

func smPrefix(s string) *v1alpha3.StringMatch {
	return &v1alpha3.StringMatch{MatchType: &v1alpha3.StringMatch_Prefix{Prefix: s}}
}

func smRegex(s string) *v1alpha3.StringMatch {
	return &v1alpha3.StringMatch{MatchType: &v1alpha3.StringMatch_Regex{Regex: s}}
}

func TestStringMatchWithin(t *testing.T) {
	for _, c := range []struct {
		name       string
		root, leaf *v1alpha3.StringMatch
		want       bool
	}{
		{"root unset", nil, smPrefix("/a"), true},
		{"leaf unset", smPrefix("/a"), nil, true},
		{"prefix within prefix", smPrefix("/a"), smPrefix("/a/b"), true},
		{"prefix wider than prefix", smPrefix("/a/b"), smPrefix("/a"), false},
		{"exact within prefix", smPrefix("/a"), smExact("/a/x"), true},
		{"exact outside prefix", smPrefix("/a"), smExact("/b"), false},
		{"same exact", smExact("/a"), smExact("/a"), true},
		{"other exact", smExact("/a"), smExact("/b"), false},
		{"prefix under exact", smExact("/a"), smPrefix("/a"), false},
		{"regex root", smRegex("/a.*"), smPrefix("/a"), false},
		{"regex leaf", smPrefix("/a"), smRegex("/a.*"), false},
	} {
		if got := stringMatchWithin(c.root, c.leaf); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMergeMatches(t *testing.T) {
	root := []*v1alpha3.HTTPMatchRequest{
		{Name: "api", Uri: smPrefix("/api"), Headers: map[string]*v1alpha3.StringMatch{"x-env": smExact("prod")}},
		{Name: "v1", Uri: smPrefix("/v1")},
	}
	// Each delegate match is paired with every root match it lies in.
	got, ok := mergeMatches(root, []*v1alpha3.HTTPMatchRequest{
		{Name: "users", Uri: smPrefix("/api/users"), Headers: map[string]*v1alpha3.StringMatch{"x-user": smExact("a")}},
		{Method: smExact("GET")},
	})
	if !ok || len(got) != 3 {
		t.Fatalf("got %d matches, %v", len(got), ok)
	}
	if m := got[0]; m.Name != "api-users" || m.Uri.GetPrefix() != "/api/users" || m.Headers["x-env"].GetExact() != "prod" || m.Headers["x-user"].GetExact() != "a" {
		t.Errorf("merged match %v", m)
	}
	if m := got[2]; m.Name != "v1" || m.Uri.GetPrefix() != "/v1" || m.Method.GetExact() != "GET" {
		t.Errorf("merged match %v", m)
	}
	// A delegate match within no root match: the rule conflicts.
	if _, ok := mergeMatches(root, []*v1alpha3.HTTPMatchRequest{{Uri: smPrefix("/other")}}); ok {
		t.Error("a match outside the root's was merged")
	}
	// Either side without matches: the other stands.
	if got, ok := mergeMatches(nil, root); !ok || len(got) != 2 {
		t.Errorf("no root matches: %v %v", got, ok)
	}
	if got, ok := mergeMatches(root, nil); !ok || len(got) != 2 {
		t.Errorf("no delegate matches: %v %v", got, ok)
	}
	// The root's condition objects are not changed by a merge.
	if len(root[0].Headers) != 1 {
		t.Errorf("root headers changed: %v", root[0].Headers)
	}
}
