package router

import (
	"fmt"
	"os"
	"testing"

	"github.com/waygate/waygate/filters"
)

func TestRedirectLocation(t *testing.T) {
	tests := []struct {
		name     string
		match    string
		redirect string
		req      *filters.Request
		code     int
		want     string
	}{
		{"https_redirect keeps path and query", `{prefix: /}`, `{https_redirect: true}`,
			newReq("GET", "foo.com", "/a?b=1"), 301, "https://foo.com/a?b=1"},
		{"https_redirect drops the default http port", `{prefix: /}`, `{https_redirect: true}`,
			newReq("GET", "foo.com:80", "/a"), 301, "https://foo.com/a"},
		{"https_redirect keeps other ports", `{prefix: /}`, `{https_redirect: true}`,
			newReq("GET", "foo.com:8080", "/a"), 301, "https://foo.com:8080/a"},
		{"x-forwarded-proto decides the default port", `{prefix: /}`, `{https_redirect: true}`,
			newReq("GET", "foo.com:443", "/a", "x-forwarded-proto", "https"), 301, "https://foo.com:443/a"},
		{"scheme_redirect", `{prefix: /}`, `{scheme_redirect: HTTPS, response_code: FOUND}`,
			newReq("GET", "foo.com", "/"), 302, "https://foo.com/"},
		{"host and port", `{prefix: /}`, `{host_redirect: bar.com, port_redirect: 8443, response_code: SEE_OTHER}`,
			newReq("GET", "foo.com:8080", "/x"), 303, "http://bar.com:8443/x"},
		{"port_redirect replaces the request port", `{prefix: /}`, `{port_redirect: 9000, response_code: TEMPORARY_REDIRECT}`,
			newReq("GET", "foo.com:8080", "/x"), 307, "http://foo.com:9000/x"},
		{"ipv6 authority", `{prefix: /}`, `{port_redirect: 9000}`,
			newReq("GET", "[::1]:8080", "/x"), 301, "http://[::1]:9000/x"},
		{"path_redirect keeps the query", `{prefix: /}`, `{path_redirect: /new, response_code: PERMANENT_REDIRECT}`,
			newReq("GET", "h", "/old?a=1"), 308, "http://h/new?a=1"},
		{"path_redirect with query replaces it", `{prefix: /}`, `{path_redirect: "/new?b=2", strip_query: true}`,
			newReq("GET", "h", "/old?a=1"), 301, "http://h/new?b=2"},
		{"strip_query", `{prefix: /}`, `{strip_query: true}`,
			newReq("GET", "h", "/old?a=1"), 301, "http://h/old"},
		{"prefix_rewrite replaces the matched prefix", `{prefix: /old/}`, `{prefix_rewrite: /new/}`,
			newReq("GET", "h", "/old/a/b?x=1"), 301, "http://h/new/a/b?x=1"},
		{"prefix_rewrite with strip_query", `{prefix: /old}`, `{prefix_rewrite: /, strip_query: true}`,
			newReq("GET", "h", "/old/x?y"), 301, "http://h//x"},
		{"prefix_rewrite on a path route replaces the path", `{path: /exact}`, `{prefix_rewrite: /other}`,
			newReq("GET", "h", "/exact?q"), 301, "http://h/other?q"},
		{"regex_rewrite", `{prefix: /}`, `{regex_rewrite: {pattern: {regex: "^/v1/(.*)$"}, substitution: "/v2/\\1"}}`,
			newReq("GET", "h", "/v1/users?id=3"), 301, "http://h/v2/users?id=3"},
		{"path gets a leading slash", `{prefix: /}`, `{path_redirect: "x"}`,
			newReq("GET", "h", "/y"), 301, "http://h/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := compileYAML(t, fmt.Sprintf(`
virtual_hosts:
- {name: vh, domains: ["*"], routes: [{name: r, match: %s, redirect: %s}]}
`, tt.match, tt.redirect))
			r := tbl.Match(tt.req, testConn)
			if r == nil || r.Redirect == nil {
				t.Fatalf("no redirect route matched")
			}
			if r.Redirect.Code != tt.code {
				t.Errorf("code = %d, want %d", r.Redirect.Code, tt.code)
			}
			if got := r.Location(tt.req); got != tt.want {
				t.Errorf("Location = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDirectResponse(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - {name: ok, match: {path: /ok}, direct_response: {status: 200, body: {inline_string: "fine"}}}
  - {name: bytes, match: {path: /bytes}, direct_response: {status: 403, body: {inline_bytes: "ZGVuaWVk"}}}
  - {name: moved, match: {path: /moved}, direct_response: {status: 301}}
`)
	for _, tt := range []struct {
		path, body string
		status     int
	}{
		{"/ok", "fine", 200}, {"/bytes", "denied", 403}, {"/moved", "", 301},
	} {
		req := newReq("GET", "h", tt.path)
		r := tbl.Match(req, testConn)
		if r == nil || r.Direct == nil {
			t.Fatalf("%s: no direct response route", tt.path)
		}
		if r.Direct.Status != tt.status || r.Direct.Body != tt.body {
			t.Errorf("%s: got %d %q, want %d %q", tt.path, r.Direct.Status, r.Direct.Body, tt.status, tt.body)
		}
	}
	req := newReq("GET", "h", "/moved")
	if got := tbl.Match(req, testConn).Location(req); got != "http://h/moved" {
		t.Errorf("Location = %q", got)
	}
}

func TestDirectResponseFromFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/body.txt"
	if err := os.WriteFile(path, []byte("from file"), 0o600); err != nil {
		t.Fatal(err)
	}
	tbl := compileYAML(t, fmt.Sprintf(`
virtual_hosts:
- {name: vh, domains: ["*"], routes: [{match: {prefix: /}, direct_response: {status: 503, body: {filename: %q}}}]}
`, path))
	if r := tbl.Match(newReq("GET", "h", "/"), testConn); r.Direct.Body != "from file" {
		t.Errorf("body = %q", r.Direct.Body)
	}
	compileErr(t, `
virtual_hosts:
- {name: vh, domains: ["*"], routes: [{match: {prefix: /}, direct_response: {status: 503, body: {filename: /does/not/exist}}}]}
`)
}
