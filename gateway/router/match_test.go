package router

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/waygate/waygate/filters"
)

// oneRoute compiles a table whose only route has the given match.
func oneRoute(t *testing.T, match string) *Table {
	t.Helper()
	return compileYAML(t, fmt.Sprintf(`
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - name: r
    match: %s
    route: {cluster: c}
`, match))
}

func TestRouteMatch(t *testing.T) {
	type probe struct {
		req  *filters.Request
		want bool
	}
	get := func(path string, kv ...string) *filters.Request { return newReq("GET", "h", path, kv...) }
	tests := []struct {
		name   string
		match  string
		probes []probe
	}{
		{"prefix", `{prefix: /api}`, []probe{
			{get("/api"), true}, {get("/api/v1"), true}, {get("/apix"), true}, {get("/API"), false}, {get("/ap"), false},
		}},
		{"prefix ignores query", `{prefix: "/a?b"}`, []probe{
			{get("/a?b"), false},
		}},
		{"prefix case-insensitive", `{prefix: /Api, case_sensitive: false}`, []probe{
			{get("/api/x"), true}, {get("/APi"), true}, {get("/b"), false},
		}},
		{"path", `{path: /login}`, []probe{
			{get("/login"), true}, {get("/login?next=/"), true}, {get("/login#frag"), true}, {get("/login/"), false}, {get("/Login"), false},
		}},
		{"path case-insensitive", `{path: /Login, case_sensitive: false}`, []probe{
			{get("/LOGIN"), true}, {get("/login/x"), false},
		}},
		{"safe_regex is a full match on the path", `{safe_regex: {regex: "/reviews/[0-9]+"}}`, []probe{
			{get("/reviews/12"), true}, {get("/reviews/12?x=1"), true}, {get("/reviews/12/x"), false}, {get("/x/reviews/12"), false},
		}},
		{"path_separated_prefix", `{path_separated_prefix: /api}`, []probe{
			{get("/api"), true}, {get("/api/"), true}, {get("/api/v1"), true}, {get("/api?x"), true}, {get("/apix"), false},
		}},
		{"header exact", `{prefix: /, headers: [{name: end-user, string_match: {exact: jason}}]}`, []probe{
			{get("/", "End-User", "jason"), true}, {get("/", "end-user", "Jason"), false}, {get("/"), false},
		}},
		{"header exact ignore_case", `{prefix: /, headers: [{name: end-user, string_match: {exact: jason, ignore_case: true}}]}`, []probe{
			{get("/", "end-user", "JASON"), true},
		}},
		{"deprecated exact_match", `{prefix: /, headers: [{name: x, exact_match: v}]}`, []probe{
			{get("/", "x", "v"), true}, {get("/", "x", "w"), false},
		}},
		{"header prefix suffix contains", `{prefix: /, headers: [{name: a, prefix_match: pre}, {name: b, suffix_match: suf}, {name: c, contains_match: mid}]}`, []probe{
			{get("/", "a", "prefix", "b", "is-suf", "c", "amidst"), true},
			{get("/", "a", "xprefix", "b", "is-suf", "c", "amidst"), false},
		}},
		{"header string_match contains ignore_case", `{prefix: /, headers: [{name: ua, string_match: {contains: firefox, ignore_case: true}}]}`, []probe{
			{get("/", "ua", "Mozilla Firefox/1"), true}, {get("/", "ua", "Chrome"), false},
		}},
		{"header regex", `{prefix: /, headers: [{name: x-v, safe_regex_match: {regex: "v[12]"}}]}`, []probe{
			{get("/", "x-v", "v1"), true}, {get("/", "x-v", "v12"), false},
		}},
		{"repeated header values join with a comma", `{prefix: /, headers: [{name: x, string_match: {exact: "a,b"}}]}`, []probe{
			{get("/", "x", "a", "x", "b"), true}, {get("/", "x", "a"), false},
		}},
		{"present", `{prefix: /, headers: [{name: x, present_match: true}]}`, []probe{
			{get("/", "x", ""), true}, {get("/"), false},
		}},
		{"absent", `{prefix: /, headers: [{name: x, present_match: false}]}`, []probe{
			{get("/", "x", "1"), false}, {get("/"), true},
		}},
		{"no specifier means present", `{prefix: /, headers: [{name: x}]}`, []probe{
			{get("/", "x", "1"), true}, {get("/"), false},
		}},
		{"range", `{prefix: /, headers: [{name: x-n, range_match: {start: 10, end: 20}}]}`, []probe{
			{get("/", "x-n", "10"), true}, {get("/", "x-n", "19"), true}, {get("/", "x-n", "20"), false}, {get("/", "x-n", "-5"), false}, {get("/", "x-n", "abc"), false},
		}},
		{"invert", `{prefix: /, headers: [{name: x, string_match: {exact: a}, invert_match: true}]}`, []probe{
			{get("/", "x", "a"), false}, {get("/", "x", "b"), true}, {get("/"), false},
		}},
		{"invert present", `{prefix: /, headers: [{name: x, present_match: true, invert_match: true}]}`, []probe{
			{get("/", "x", "a"), false}, {get("/"), true},
		}},
		{"treat missing as empty", `{prefix: /, headers: [{name: x, string_match: {exact: ""}, treat_missing_header_as_empty: true}]}`, []probe{
			{get("/"), true}, {get("/", "x", "a"), false},
		}},
		{"treat missing as empty inverted", `{prefix: /, headers: [{name: x, string_match: {exact: "a"}, invert_match: true, treat_missing_header_as_empty: true}]}`, []probe{
			{get("/"), true}, {get("/", "x", "a"), false},
		}},
		{":method", `{prefix: /, headers: [{name: ":method", string_match: {exact: POST}}]}`, []probe{
			{newReq("POST", "h", "/"), true}, {get("/"), false},
		}},
		{":authority and host", `{prefix: /, headers: [{name: ":authority", string_match: {suffix: ".com"}}, {name: host, string_match: {prefix: "a"}}]}`, []probe{
			{newReq("GET", "a.com", "/"), true}, {newReq("GET", "b.com", "/"), false},
		}},
		{":path includes the query", `{prefix: /, headers: [{name: ":path", string_match: {suffix: "?x=1"}}]}`, []probe{
			{get("/a?x=1"), true}, {get("/a"), false},
		}},
		{":scheme", `{prefix: /, headers: [{name: ":scheme", string_match: {exact: https}}]}`, []probe{
			{&filters.Request{Scheme: "https", Path: "/"}, true}, {get("/"), false},
		}},
		{"query string_match", `{prefix: /, query_parameters: [{name: debug, string_match: {exact: "on air"}}]}`, []probe{
			{get("/?debug=on%20air"), true}, {get("/?a=1&debug=on+air"), true}, {get("/?debug=off"), false}, {get("/"), false},
		}},
		{"query first value wins", `{prefix: /, query_parameters: [{name: v, string_match: {exact: "1"}}]}`, []probe{
			{get("/?v=1&v=2"), true}, {get("/?v=2&v=1"), false},
		}},
		{"query present", `{prefix: /, query_parameters: [{name: debug, present_match: true}]}`, []probe{
			{get("/?debug"), true}, {get("/?debug="), true}, {get("/?debugx=1"), false},
		}},
		{"grpc", `{prefix: /, grpc: {}}`, []probe{
			{get("/", "content-type", "application/grpc"), true},
			{get("/", "content-type", "application/grpc+proto"), true},
			{get("/", "content-type", "application/grpc-web"), false},
			{get("/", "content-type", "application/json"), false},
			{get("/"), false},
		}},
		{"cookie", `{prefix: /, cookies: [{name: session, string_match: {prefix: "abc"}}]}`, []probe{
			{get("/", "cookie", "a=1; session=abcdef"), true}, {get("/", "cookie", "session=x"), false}, {get("/"), false},
		}},
		{"runtime_fraction 0", `{prefix: /, runtime_fraction: {default_value: {numerator: 0}}}`, []probe{
			{get("/"), false},
		}},
		{"runtime_fraction 100", `{prefix: /, runtime_fraction: {default_value: {numerator: 100}}}`, []probe{
			{get("/"), true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := oneRoute(t, tt.match)
			for _, p := range tt.probes {
				got := tbl.Match(p.req, testConn) != nil
				if got != p.want {
					t.Errorf("%s %s %v: matched=%v, want %v", p.req.Method, p.req.Path, p.req.Header, got, p.want)
				}
			}
		})
	}
}

func TestRuntimeFractionUsesTheRandomValue(t *testing.T) {
	tbl := oneRoute(t, `{prefix: /, runtime_fraction: {default_value: {numerator: 25, denominator: HUNDRED}}}`)
	req := newReq("GET", "h", "/")
	for random, want := range map[uint64]bool{0: true, 24: true, 25: false, 99: false, 124: true} {
		if got := tbl.MatchRandom(req, testConn, random) != nil; got != want {
			t.Errorf("random %d: matched=%v, want %v", random, got, want)
		}
	}
	hits := 0
	for i := 0; i < 10000; i++ {
		if tbl.Match(req, testConn) != nil {
			hits++
		}
	}
	if hits < 2000 || hits > 3000 {
		t.Errorf("Match hit %d of 10000, want about 2500", hits)
	}
}

func TestTLSContextMatch(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - {name: validated, match: {prefix: /, tls_context: {validated: true}}, route: {cluster: c}}
  - {name: presented, match: {prefix: /, tls_context: {presented: true}}, route: {cluster: c}}
  - {name: anonymous, match: {prefix: /, tls_context: {presented: false}}, route: {cluster: c}}
`)
	cert := &x509.Certificate{}
	conns := map[string]*filters.Connection{
		"validated": {TLS: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}, VerifiedChains: [][]*x509.Certificate{{cert}}}},
		"presented": {TLS: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}},
		"anonymous": {TLS: &tls.ConnectionState{}},
	}
	for want, conn := range conns {
		if got := routeName(tbl.Match(newReq("GET", "h", "/"), conn)); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	if got := routeName(tbl.Match(newReq("GET", "h", "/"), &filters.Connection{})); got != "anonymous" {
		t.Errorf("plaintext: got %s, want anonymous", got)
	}
}

func TestFirstMatchWins(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - {name: jason, match: {prefix: /reviews, headers: [{name: end-user, string_match: {exact: jason}}]}, route: {cluster: v2}}
  - {name: all, match: {prefix: /}, route: {cluster: v1}}
  - {name: never, match: {path: /reviews}, route: {cluster: v3}}
`)
	if got := routeName(tbl.Match(newReq("GET", "h", "/reviews", "end-user", "jason"), testConn)); got != "jason" {
		t.Errorf("got %s, want jason", got)
	}
	if got := routeName(tbl.Match(newReq("GET", "h", "/reviews"), testConn)); got != "all" {
		t.Errorf("got %s, want all", got)
	}
}

// A route's dynamic_metadata conditions read what filters before the
// router wrote: here the claims jwt_authn verified, in the shape istiod
// gives a VirtualService's @request.auth.claims header match (a claim
// that is the string, or a list holding it).
func TestDynamicMetadataMatch(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - name: group1
    match:
      prefix: /
      dynamic_metadata:
      - filter: envoy.filters.http.jwt_authn
        path: [{key: payload}, {key: groups}]
        value:
          or_match:
            value_matchers:
            - list_match: {one_of: {string_match: {exact: group1}}}
            - string_match: {exact: group1}
    route: {cluster: v2}
  - name: not-alice
    match:
      prefix: /
      dynamic_metadata:
      - filter: envoy.filters.http.jwt_authn
        path: [{key: payload}, {key: sub}]
        value: {string_match: {exact: alice}}
        invert: true
    route: {cluster: v3}
  - {name: rest, match: {prefix: /}, route: {cluster: v1}}
`)
	claims := func(c map[string]any) map[string]map[string]any {
		return map[string]map[string]any{"envoy.filters.http.jwt_authn": {"payload": c}}
	}
	for _, c := range []struct {
		name string
		md   map[string]map[string]any
		want string
	}{
		{"claim list holds the value", claims(map[string]any{"sub": "alice", "groups": []any{"group0", "group1"}}), "group1"},
		{"claim is the value", claims(map[string]any{"sub": "alice", "groups": "group1"}), "group1"},
		{"claim list without it", claims(map[string]any{"sub": "alice", "groups": []any{"group2"}}), "rest"},
		{"inverted match", claims(map[string]any{"sub": "bob"}), "not-alice"},
		{"no token: no metadata", nil, "not-alice"},
	} {
		x := &filters.Exchange{Request: *newReq("GET", "h", "/"), Downstream: *testConn, Metadata: c.md}
		r, _ := tbl.MatchExchange(x).(*Route)
		if got := routeName(r); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
	// Match, without an exchange, sees no metadata.
	if got := routeName(tbl.Match(newReq("GET", "h", "/"), testConn)); got != "not-alice" {
		t.Errorf("Match: got %s, want not-alice", got)
	}
}

// A route with weighted clusters is matched to the pick, so filters
// before the router see the cluster the request goes to; the router's
// header_name makes the pick deterministic here.
func TestMatchExchangePicksWeightedCluster(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - name: split
    match: {prefix: /}
    route:
      weighted_clusters:
        header_name: x-pick
        clusters:
        - {name: v1, weight: 80}
        - {name: v2, weight: 20}
`)
	for pick, want := range map[string]string{"0": "v1", "79": "v1", "80": "v2", "99": "v2"} {
		x := &filters.Exchange{Request: *newReq("GET", "h", "/", "x-pick", pick), Downstream: *testConn}
		got := tbl.MatchExchange(x)
		wc, ok := got.(*WeightedCluster)
		if !ok || got.Cluster() != want || got.Name() != "split" || wc.Route().Name() != "split" {
			t.Errorf("x-pick %s: matched %T cluster %q, want the weighted cluster %s of route split", pick, got, got.Cluster(), want)
		}
		if rt, w := Resolve(got); rt == nil || w != wc {
			t.Errorf("Resolve(%T) = %v, %v", got, rt, w)
		}
	}
}

// The weighted pick of an exchange holds when its route is matched
// again (after ClearRouteCache), as Envoy's stream id keeps it.
func TestWeightedPickStableAcrossRematch(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - match: {prefix: /}
    route:
      weighted_clusters:
        clusters:
        - {name: v1, weight: 50}
        - {name: v2, weight: 50}
`)
	seen := map[string]bool{}
	for range 64 {
		x := &filters.Exchange{Request: *newReq("GET", "h", "/"), Downstream: *testConn}
		first := tbl.MatchExchange(x).Cluster()
		for range 4 {
			if again := tbl.MatchExchange(x).Cluster(); again != first {
				t.Fatalf("matched again: %s, first %s", again, first)
			}
		}
		seen[first] = true
	}
	if !seen["v1"] || !seen["v2"] {
		t.Errorf("64 exchanges all went to %v", seen)
	}
}
