package router

import (
	"math/rand/v2"
	"strings"
	"testing"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/waygate/waygate/filters"
)

const fuzzTableYAML = `
virtual_hosts:
- name: a
  domains: ["a.com", "*.a.com", "a.*", "[::1]:8080"]
  routes:
  - {name: ra, match: {prefix: /}, redirect: {https_redirect: true, strip_query: true}}
- name: b
  domains: ["*-b.org"]
  routes:
  - {name: rb, match: {path_separated_prefix: /x}, redirect: {prefix_rewrite: /y, port_redirect: 81}}
  - {name: rb2, match: {safe_regex: {regex: "/(v[0-9])/(.*)"}}, redirect: {regex_rewrite: {pattern: {regex: "^/(v[0-9])/(.*)$"}, substitution: "/\\2/\\1"}}}
`

func FuzzMatch(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	y := fuzzTableYAML + strings.Replace(randomTableYAML(rng, 120), "virtual_hosts:\n", "", 1)
	y += `  - {name: q, match: {prefix: /, query_parameters: [{name: k, string_match: {prefix: v}}], cookies: [{name: c, string_match: {exact: x}}], grpc: {}}, route: {cluster: q, prefix_rewrite: /p, hash_policy: [{query_parameter: {name: k}}, {cookie: {name: c, ttl: 1s}}]}}
  - {name: w, match: {prefix: /, runtime_fraction: {default_value: {numerator: 50}}}, route: {weighted_clusters: {clusters: [{name: w1, weight: 3}, {name: w2, weight: 1}]}, regex_rewrite: {pattern: {regex: "a(b*)"}, substitution: "\\1-"}}}
  - {name: d, match: {prefix: "", headers: [{name: x-n, range_match: {start: -5, end: 5}}, {name: ":method", string_match: {exact: GET}, invert_match: true}]}, direct_response: {status: 302}}
`
	tbl := compileYAML(f, y)
	f.Add("a.com", "/", "x-v", "1", uint64(0))
	f.Add("Z-B.org", "/x/y?q=1", "cookie", "c=x", uint64(7))
	f.Add("h:80", "/api/v1?k=v%zz&k", "content-type", "application/grpc", uint64(1))
	f.Add("[::1]:8080", "/ab/abc#f", "x-n", "-3", uint64(99))
	f.Add("", "", "", "", uint64(0))
	f.Add("a.", "*", ":path", "/", uint64(1<<63))
	f.Fuzz(func(t *testing.T, authority, path, hname, hval string, random uint64) {
		req := &filters.Request{Method: "POST", Scheme: "http", Authority: authority, Path: path, Header: map[string][]string{}}
		if hname != "" {
			req.Header.Add(hname, hval)
		}
		r := tbl.MatchRandom(req, testConn, random)
		if vh := tbl.VirtualHostFor(req); vh != nil {
			p, q := splitPath(req.Path)
			if want := matchLinear(vh.routes, p, q, req, testConn, nil, random); want != r {
				t.Fatalf("index chose %s, linear scan %s", routeName(r), routeName(want))
			}
		}
		if r == nil {
			return
		}
		_ = r.Location(req)
		_, _ = r.RewritePath(req.Path)
		if r.Forward != nil {
			_, wc := r.Target(req, random)
			_, _, _ = r.Forward.Hash(HashInput{Request: req, Conn: testConn})
			x := &filters.Exchange{Request: *req, Downstream: *testConn}
			r.FinalizeRequest(x, wc, true)
			r.ApplyResponseHeaders(x, wc)
		}
	})
}

// FuzzRewrite drives the path builders of rewrites and redirects with
// arbitrary patterns, substitutions and request paths.
func FuzzRewrite(f *testing.F) {
	f.Add("^/service/([^/]+)(/.*)$", `\2/instance/\1`, "/service/foo/v1/api?a=b", "/p/", "h:80")
	f.Add("", `x`, "abc", "", "")
	f.Add("(a*)", `[\1\\]`, "/aa?aa#aa", "/", "[::1]:443")
	f.Add("a|", `\0\0`, "/?", "x", "h")
	f.Fuzz(func(t *testing.T, pattern, substitution, path, prefix, authority string) {
		rw, err := compileRewrite(&matcherv3.RegexMatchAndSubstitute{
			Pattern:      &matcherv3.RegexMatcher{Regex: pattern},
			Substitution: substitution,
		})
		req := &filters.Request{Scheme: "http", Authority: authority, Path: path}
		m := &routeMatch{kind: pathPrefix, value: "/p"}
		p, q := splitPath(path)
		rest := path[len(p):]
		if err == nil {
			out := m.rewritePath(path, "", false, rw)
			if !strings.HasSuffix(out, rest) {
				t.Fatalf("regex rewrite of %q lost the query %q: %q", path, q, out)
			}
			rd := &Redirect{regex: rw, stripQuery: true}
			loc := rd.location(req, m.rewritePath(path, "", false, rw))
			if !strings.HasPrefix(loc, "http://") {
				t.Fatalf("location %q", loc)
			}
		}
		for _, kind := range []pathKind{pathPrefix, pathExact, pathRegex, pathSeparatedPrefix} {
			m.kind = kind
			out := m.rewritePath(path, prefix, true, nil)
			if !strings.HasPrefix(out, prefix) {
				t.Fatalf("prefix rewrite of %q to %q gave %q", path, prefix, out)
			}
			rd := &Redirect{port: ":8443", hasPrefix: true, prefix: prefix}
			_ = rd.location(req, out)
		}
	})
}

func FuzzCompileFormat(f *testing.F) {
	for _, s := range []string{"", "plain", "%%", "%REQ(x-a?x-b):3%", "%START_TIME(%Y %E3S %6f)%", "%DOWNSTREAM_REMOTE_ADDRESS%:%PROTOCOL%", "%", "%(%", "%REQ(:path)%"} {
		f.Add(s)
	}
	c := &fmtContext{
		req:  newReq("GET", "h", "/p?q", "x-a", "v"),
		conn: testConn,
		info: &filters.StreamInfo{},
		resp: &filters.Response{Status: 200},
	}
	f.Fuzz(func(t *testing.T, s string) {
		fm, err := compileFormat(s)
		if err != nil {
			return
		}
		out := fm.render(c)
		if !strings.Contains(s, "%") && out != s {
			t.Fatalf("literal %q rendered as %q", s, out)
		}
	})
}
