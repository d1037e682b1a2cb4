package headers

import (
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
)

type testRoute struct{ per map[string]any }

func (r *testRoute) Name() string                    { return "r" }
func (r *testRoute) VirtualHost() string             { return "vh" }
func (r *testRoute) Cluster() string                 { return "c" }
func (r *testRoute) PerFilterConfig(name string) any { return r.per[name] }

func add(k, v string, a corev3.HeaderValueOption_HeaderAppendAction) *mutationv3.HeaderMutation {
	return &mutationv3.HeaderMutation{Action: &mutationv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
		Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: a}}}
}

func remove(k string) *mutationv3.HeaderMutation {
	return &mutationv3.HeaderMutation{Action: &mutationv3.HeaderMutation_Remove{Remove: k}}
}

const (
	appendAdd    = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
	ifAbsent     = corev3.HeaderValueOption_ADD_IF_ABSENT
	overwriteAdd = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	overwrite    = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS
)

func exchange(hdr ...string) *filters.Exchange {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	return &filters.Exchange{
		Request:    filters.Request{Method: "GET", Authority: "example.com", Path: "/a?b=1", Header: h},
		Downstream: filters.Connection{RemoteAddr: netip.MustParseAddrPort("10.1.2.3:5555")},
	}
}

func TestRequestMutations(t *testing.T) {
	tests := []struct {
		name string
		ms   []*mutationv3.HeaderMutation
		in   []string
		want http.Header
	}{
		{"append adds", []*mutationv3.HeaderMutation{add("x-a", "1", appendAdd)}, nil, http.Header{"X-A": {"1"}}},
		{"append appends", []*mutationv3.HeaderMutation{add("x-a", "2", appendAdd)}, []string{"X-A", "1"}, http.Header{"X-A": {"1", "2"}}},
		{"add if absent keeps", []*mutationv3.HeaderMutation{add("x-a", "2", ifAbsent)}, []string{"X-A", "1"}, http.Header{"X-A": {"1"}}},
		{"add if absent adds", []*mutationv3.HeaderMutation{add("x-a", "2", ifAbsent)}, nil, http.Header{"X-A": {"2"}}},
		{"overwrite or add overwrites", []*mutationv3.HeaderMutation{add("x-a", "2", overwriteAdd)}, []string{"X-A", "1", "X-A", "0"}, http.Header{"X-A": {"2"}}},
		{"overwrite if exists skips absent", []*mutationv3.HeaderMutation{add("x-a", "2", overwrite)}, nil, http.Header{}},
		{"overwrite if exists", []*mutationv3.HeaderMutation{add("x-a", "2", overwrite)}, []string{"X-A", "1"}, http.Header{"X-A": {"2"}}},
		{"remove", []*mutationv3.HeaderMutation{remove("x-a")}, []string{"X-A", "1", "X-B", "2"}, http.Header{"X-B": {"2"}}},
		{"in order", []*mutationv3.HeaderMutation{add("x-a", "1", appendAdd), remove("x-a"), add("x-a", "3", appendAdd)}, nil, http.Header{"X-A": {"3"}}},
		{"remove on match", []*mutationv3.HeaderMutation{{Action: &mutationv3.HeaderMutation_RemoveOnMatch_{RemoveOnMatch: &mutationv3.HeaderMutation_RemoveOnMatch{
			KeyMatcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "x-internal-"}}}}}},
			[]string{"X-Internal-A", "1", "X-Internal-B", "2", "X-Keep", "3"}, http.Header{"X-Keep": {"3"}}},
		{"format from request header", []*mutationv3.HeaderMutation{add("x-copy", "user=%REQ(x-user)%", appendAdd)}, []string{"X-User", "jason"}, http.Header{"X-User": {"jason"}, "X-Copy": {"user=jason"}}},
		{"format client address", []*mutationv3.HeaderMutation{add("x-client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", appendAdd)}, nil, http.Header{"X-Client": {"10.1.2.3"}}},
		{"empty value dropped", []*mutationv3.HeaderMutation{add("x-copy", "%REQ(x-missing)%", appendAdd)}, nil, http.Header{}},
		{"percent escape", []*mutationv3.HeaderMutation{add("x-pct", "100%%", appendAdd)}, nil, http.Header{"X-Pct": {"100%"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(&hmv3.HeaderMutation{Mutations: &hmv3.Mutations{RequestMutations: tt.ms}})
			if err != nil {
				t.Fatal(err)
			}
			x := exchange(tt.in...)
			fl := f.NewFilter(x).(*filter)
			if st := fl.OnRequestHeaders(x, true); st != filters.Continue {
				t.Fatalf("status %v", st)
			}
			if !reflect.DeepEqual(x.Request.Header, tt.want) {
				t.Errorf("headers = %v, want %v", x.Request.Header, tt.want)
			}
		})
	}
}

func TestKeepEmptyValueAndDeprecatedAppend(t *testing.T) {
	ms := []*mutationv3.HeaderMutation{
		{Action: &mutationv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-empty"}, KeepEmptyValue: true}}},
		{Action: &mutationv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-a", Value: "new"}, Append: wrapperspb.Bool(false)}}},
	}
	f, err := New(&hmv3.HeaderMutation{Mutations: &hmv3.Mutations{RequestMutations: ms}})
	if err != nil {
		t.Fatal(err)
	}
	x := exchange("X-A", "old")
	f.NewFilter(x).(*filter).OnRequestHeaders(x, true)
	want := http.Header{"X-Empty": {""}, "X-A": {"new"}}
	if !reflect.DeepEqual(x.Request.Header, want) {
		t.Errorf("headers = %v, want %v", x.Request.Header, want)
	}
}

func TestResponseMutationsAndRouteOrder(t *testing.T) {
	listener := &hmv3.Mutations{ResponseMutations: []*mutationv3.HeaderMutation{add("x-level", "listener", overwriteAdd), add("x-method", "%REQ(:METHOD)% %RESPONSE_CODE%", appendAdd)}}
	route, err := buildRoute(&hmv3.HeaderMutationPerRoute{Mutations: &hmv3.Mutations{ResponseMutations: []*mutationv3.HeaderMutation{add("x-level", "route", overwriteAdd)}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		specificWins bool
		want         string
	}{{false, "route"}, {true, "listener"}} {
		f, err := New(&hmv3.HeaderMutation{Mutations: listener, MostSpecificHeaderMutationsWins: tt.specificWins})
		if err != nil {
			t.Fatal(err)
		}
		x := exchange()
		x.Route = &testRoute{per: map[string]any{FilterName: route}}
		x.Response = filters.Response{Status: 200, Header: http.Header{}}
		f.NewFilter(x).(*filter).OnResponseHeaders(x, true)
		if got := x.Response.Header.Get("X-Level"); got != tt.want {
			t.Errorf("most_specific_header_mutations_wins=%v: x-level = %q, want %q", tt.specificWins, got, tt.want)
		}
		if got := x.Response.Header.Get("X-Method"); got != "GET 200" {
			t.Errorf("x-method = %q", got)
		}
	}
}

func TestAuthorityChangeClearsRoute(t *testing.T) {
	f, err := New(&hmv3.HeaderMutation{Mutations: &hmv3.Mutations{RequestMutations: []*mutationv3.HeaderMutation{add(":authority", "other.example", overwriteAdd)}}})
	if err != nil {
		t.Fatal(err)
	}
	x := exchange()
	matched := 0
	x.SetRouteMatcher(func(*filters.Exchange) filters.Route { matched++; return nil })
	f.NewFilter(x).(*filter).OnRequestHeaders(x, true)
	if x.Request.Authority != "other.example" {
		t.Fatalf("authority = %q", x.Request.Authority)
	}
	x.MatchedRoute()
	if matched != 1 {
		t.Errorf("route re-matched %d times, want 1", matched)
	}
}

func TestNoFilterWithoutMutations(t *testing.T) {
	f, err := New(&hmv3.HeaderMutation{})
	if err != nil {
		t.Fatal(err)
	}
	if fl := f.NewFilter(exchange()); fl != nil {
		t.Errorf("filter = %v, want none", fl)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		m    *hmv3.Mutations
		want string
	}{
		{"pseudo header", &hmv3.Mutations{RequestMutations: []*mutationv3.HeaderMutation{add(":path", "/x", appendAdd)}}, "mutations.request_mutations[0].append.header.key"},
		{"remove pseudo", &hmv3.Mutations{ResponseMutations: []*mutationv3.HeaderMutation{remove(":status")}}, "mutations.response_mutations[0].remove"},
		{"unknown operator", &hmv3.Mutations{RequestMutations: []*mutationv3.HeaderMutation{add("x", "%NOPE%", appendAdd)}}, "mutations.request_mutations[0].append.header.value"},
		{"no action", &hmv3.Mutations{RequestMutations: []*mutationv3.HeaderMutation{{}}}, "one of remove, append, remove_on_match"},
		{"trailers", &hmv3.Mutations{ResponseTrailersMutations: []*mutationv3.HeaderMutation{remove("x")}}, "response_trailers_mutations: not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(&hmv3.HeaderMutation{Mutations: tt.m})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func BenchmarkRequestMutations(b *testing.B) {
	f, err := New(&hmv3.HeaderMutation{Mutations: &hmv3.Mutations{RequestMutations: []*mutationv3.HeaderMutation{
		add("x-a", "1", overwriteAdd), remove("x-b"), add("x-client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", overwriteAdd)}}})
	if err != nil {
		b.Fatal(err)
	}
	x := exchange("X-B", "2")
	b.ReportAllocs()
	for b.Loop() {
		f.NewFilter(x).(*filter).OnRequestHeaders(x, true)
	}
}
