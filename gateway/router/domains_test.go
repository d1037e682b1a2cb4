package router

import "testing"

func TestVirtualHostDomains(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- {name: exact, domains: ["www.foo.com"], routes: [{name: exact, match: {prefix: /}, route: {cluster: c}}]}
- {name: suffix, domains: ["*.foo.com"], routes: [{name: suffix, match: {prefix: /}, route: {cluster: c}}]}
- {name: longsuffix, domains: ["*-bar.foo.com"], routes: [{name: longsuffix, match: {prefix: /}, route: {cluster: c}}]}
- {name: prefix, domains: ["foo.*"], routes: [{name: prefix, match: {prefix: /}, route: {cluster: c}}]}
- {name: longprefix, domains: ["foo.ba*"], routes: [{name: longprefix, match: {prefix: /}, route: {cluster: c}}]}
- {name: port, domains: ["ported.com:8080"], routes: [{name: port, match: {prefix: /}, route: {cluster: c}}]}
- {name: default, domains: ["*"], routes: [{name: default, match: {prefix: /}, route: {cluster: c}}]}
`)
	tests := []struct {
		authority, want string
	}{
		{"www.foo.com", "exact"},
		{"WWW.Foo.COM", "exact"},
		{"api.foo.com", "suffix"},
		{"a.b.foo.com", "suffix"},
		{"baz-bar.foo.com", "longsuffix"},
		{"-bar.foo.com", "suffix"}, // the wildcard never matches the empty string
		{".foo.com", "default"},
		{"foo.com", "prefix"},
		{"foo.org", "prefix"},
		{"foo.bar", "longprefix"},
		{"foo.", "default"},
		{"ported.com:8080", "port"},
		{"ported.com", "default"},
		{"www.foo.com:80", "default"}, // the port is part of the authority
		{"other.net", "default"},
	}
	for _, tt := range tests {
		got := routeName(tbl.Match(newReq("GET", tt.authority, "/"), testConn))
		if got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.authority, got, tt.want)
		}
	}
}

func TestIgnorePortInHostMatching(t *testing.T) {
	tbl := compileYAML(t, `
ignore_port_in_host_matching: true
virtual_hosts:
- {name: a, domains: ["foo.com"], routes: [{name: a, match: {prefix: /}, route: {cluster: c}}]}
- {name: v6, domains: ["[::1]"], routes: [{name: v6, match: {prefix: /}, route: {cluster: c}}]}
`)
	tests := []struct{ authority, want string }{
		{"foo.com:8080", "a"},
		{"foo.com", "a"},
		{"[::1]:443", "v6"},
		{"[::1]", "v6"},
		{"bar.com:80", "-"},
		{"", "-"},
	}
	for _, tt := range tests {
		if got := routeName(tbl.Match(newReq("GET", tt.authority, "/"), testConn)); got != tt.want {
			t.Errorf("%q: got %s, want %s", tt.authority, got, tt.want)
		}
	}
}

func TestOnlyDefaultMatchesWithoutAuthority(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- {name: d, domains: ["*"], routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]}
`)
	if got := routeName(tbl.Match(newReq("GET", "", "/"), testConn)); got != "r" {
		t.Errorf("got %s, want r", got)
	}
}

func TestVhostHeader(t *testing.T) {
	tbl := compileYAML(t, `
vhost_header: x-vhost
virtual_hosts:
- {name: a, domains: ["a.com"], routes: [{name: a, match: {prefix: /}, route: {cluster: c}}]}
- {name: b, domains: ["b.com"], routes: [{name: b, match: {prefix: /}, route: {cluster: c}}]}
`)
	if got := routeName(tbl.Match(newReq("GET", "a.com", "/", "x-vhost", "b.com"), testConn)); got != "b" {
		t.Errorf("got %s, want b", got)
	}
}

func TestStripPort(t *testing.T) {
	for in, want := range map[string]string{
		"a.com:80": "a.com", "a.com": "a.com", "[::1]:8": "[::1]", "[::1]": "[::1]", "::1": "::1", "1.2.3.4:5": "1.2.3.4",
	} {
		if got := stripPort(in); got != want {
			t.Errorf("stripPort(%q) = %q, want %q", in, got, want)
		}
	}
}
