package router

import (
	"fmt"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
)

// benchConfig builds a virtual host of n routes in the shape Istio
// produces for many VirtualServices: exact paths, prefixes, prefixes with
// a header condition, and a few regexes, each with a retry policy and a
// timeout. Other virtual hosts share the table, as on a real gateway.
func benchConfig(n int) *routev3.RouteConfiguration {
	action := func(cluster string) *routev3.Route_Route {
		return &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			Timeout:          durationpb.New(0),
			RetryPolicy:      &routev3.RetryPolicy{RetryOn: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", NumRetries: wrapperspb.UInt32(2)},
		}}
	}
	routes := make([]*routev3.Route, 0, n)
	for i := 0; i < n; i++ {
		m := &routev3.RouteMatch{CaseSensitive: wrapperspb.Bool(true)}
		switch {
		case n >= 100 && i%(n/5) == 7:
			m.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: fmt.Sprintf("/re%d/[0-9]+", i)}}
		case i%4 == 0:
			m.PathSpecifier = &routev3.RouteMatch_Path{Path: fmt.Sprintf("/svc%d/items", i)}
		case i%4 == 1:
			m.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: fmt.Sprintf("/api%d/", i)}
		case i%4 == 2:
			m.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: fmt.Sprintf("/app%d", i)}
			m.Headers = []*routev3.HeaderMatcher{{
				Name:                 "end-user",
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "jason"}}},
			}}
		default:
			m.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: fmt.Sprintf("/static%d", i)}
		}
		routes = append(routes, &routev3.Route{Name: fmt.Sprintf("r%d", i), Match: m, Action: action(fmt.Sprintf("outbound|9080||svc%d.default.svc.cluster.local", i))})
	}
	if n == 1 {
		routes[0].Match.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
	}
	return &routev3.RouteConfiguration{
		Name:                     "http.8080",
		IgnorePortInHostMatching: true,
		VirtualHosts: []*routev3.VirtualHost{
			{Name: "other.example.com:8080", Domains: []string{"other.example.com", "*.other.example.com"}},
			{Name: "bookinfo.example.com:8080", Domains: []string{"bookinfo.example.com"}, Routes: routes},
			{Name: "*:8080", Domains: []string{"*"}},
		},
	}
}

// benchRequest is a request for one of the last routes of benchConfig(n).
func benchRequest(n int) *filters.Request {
	if n == 1 {
		return newReq("GET", "bookinfo.example.com:8080", "/productpage?u=normal", "end-user", "jason", "user-agent", "bench")
	}
	i := n - 2 // an i%4 == 2 route: prefix plus header
	for i%4 != 2 {
		i--
	}
	return newReq("GET", "Bookinfo.Example.com:8080", fmt.Sprintf("/app%d/reviews/42?u=normal", i), "end-user", "jason", "user-agent", "bench")
}

func benchmarkMatch(b *testing.B, n int) {
	tbl, err := Compile(benchConfig(n))
	if err != nil {
		b.Fatal(err)
	}
	req := benchRequest(n)
	if r := tbl.Match(req, testConn); r == nil {
		b.Fatalf("no match for %s", req.Path)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tbl.Match(req, testConn)
	}
}

func BenchmarkMatch1(b *testing.B)   { benchmarkMatch(b, 1) }
func BenchmarkMatch100(b *testing.B) { benchmarkMatch(b, 100) }
func BenchmarkMatch10k(b *testing.B) { benchmarkMatch(b, 10000) }

// BenchmarkMatch10kLinear is the scan the index replaces, for comparison.
func BenchmarkMatch10kLinear(b *testing.B) {
	tbl, err := Compile(benchConfig(10000))
	if err != nil {
		b.Fatal(err)
	}
	req := benchRequest(10000)
	vh := tbl.VirtualHostFor(req)
	path, query := splitPath(req.Path)
	b.ReportAllocs()
	for b.Loop() {
		matchLinear(vh.routes, path, query, req, testConn, nil, 0)
	}
}

func BenchmarkCompile10k(b *testing.B) {
	rc := benchConfig(10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(rc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyRequestHeaders(b *testing.B) {
	tbl := compileYAML(b, `
virtual_hosts:
- name: vh
  domains: ["*"]
  request_headers_to_add: [{header: {key: x-client, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}}]
  routes:
  - match: {prefix: /}
    route: {cluster: c}
    request_headers_to_add: [{header: {key: x-route, value: r1}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
    request_headers_to_remove: [x-debug]
`)
	x := &filters.Exchange{Request: *newReq("GET", "h", "/"), Downstream: *testConn}
	r := tbl.Match(&x.Request, testConn)
	b.ReportAllocs()
	for b.Loop() {
		r.ApplyRequestHeaders(x, nil)
	}
}

// TestMatchDoesNotAllocate holds the promise the package doc makes for
// path, prefix and header routes, in both the scanned and indexed forms.
func TestMatchDoesNotAllocate(t *testing.T) {
	for _, n := range []int{1, 10, 100, 10000} {
		tbl, err := Compile(benchConfig(n))
		if err != nil {
			t.Fatal(err)
		}
		req := benchRequest(n)
		if tbl.Match(req, testConn) == nil {
			t.Fatalf("%d routes: no match", n)
		}
		if a := testing.AllocsPerRun(100, func() { tbl.Match(req, testConn) }); a != 0 {
			t.Errorf("%d routes: %v allocations per Match", n, a)
		}
	}
}
