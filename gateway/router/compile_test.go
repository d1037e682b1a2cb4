package router

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/waygate/waygate/filters"
)

// parseConfig reads a RouteConfiguration written in YAML, the way
// operators write Envoy config.
func parseConfig(t testing.TB, y string) *routev3.RouteConfiguration {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("yaml: %v", err)
	}
	rc := &routev3.RouteConfiguration{}
	if err := protojson.Unmarshal(js, rc); err != nil {
		t.Fatalf("protojson: %v\n%s", err, js)
	}
	return rc
}

func compileYAML(t testing.TB, y string) *Table {
	t.Helper()
	tbl, err := Compile(parseConfig(t, y))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tbl
}

func compileErr(t testing.TB, y string) error {
	t.Helper()
	_, err := Compile(parseConfig(t, y))
	if err == nil {
		t.Fatalf("Compile succeeded, want an error")
	}
	return err
}

// newReq builds a request; kv are header name/value pairs.
func newReq(method, authority, path string, kv ...string) *filters.Request {
	r := &filters.Request{
		Method:    method,
		Scheme:    "http",
		Authority: authority,
		Path:      path,
		Protocol:  "HTTP/1.1",
		Header:    http.Header{},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

var testConn = &filters.Connection{
	RemoteAddr: netip.MustParseAddrPort("10.1.2.3:50000"),
	LocalAddr:  netip.MustParseAddrPort("10.0.0.1:8080"),
}

// routeName returns the matched route's name, or "-" for no match.
func routeName(r *Route) string {
	if r == nil {
		return "-"
	}
	return r.Name()
}

func TestCompileErrorsNamePath(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"bad regex", `
virtual_hosts:
- name: "*:8080"
  domains: ["*"]
  routes:
  - {match: {prefix: /a}, route: {cluster: c}}
  - {match: {prefix: /b}, route: {cluster: c}}
  - {match: {prefix: /c}, route: {cluster: c}}
  - {match: {safe_regex: {regex: "/(a"}}, route: {cluster: c}}
`, `virtual_hosts[0] "*:8080": routes[3].match.safe_regex: regex "/(a": error parsing regexp: missing closing )`},
		{"duplicate domain", `
virtual_hosts:
- {name: a, domains: ["foo.com", "*"], routes: []}
- {name: b, domains: ["FOO.com"], routes: []}
`, `virtual_hosts[1] "b": domains[0]: "FOO.com" is already a domain of virtual host "a"`},
		{"two defaults", `
virtual_hosts:
- {name: a, domains: ["*"]}
- {name: b, domains: ["*"]}
`, `virtual_hosts[1] "b": domains[0]: "*" is already a domain`},
		{"no domains", `
virtual_hosts:
- {name: a}
`, `virtual_hosts[0] "a": domains: at least one domain is required`},
		{"connect matcher", `
virtual_hosts:
- {name: a, domains: ["*"], routes: [{match: {connect_matcher: {}}, route: {cluster: c}}]}
`, `routes[0].match.connect_matcher: CONNECT routing is not supported`},
		{"dynamic metadata without a namespace", `
virtual_hosts:
- {name: a, domains: ["*"], routes: [{match: {prefix: /, dynamic_metadata: [{path: [{key: k}], value: {present_match: true}}]}, route: {cluster: c}}]}
`, `routes[0].match.dynamic_metadata[0].filter: must name the metadata namespace`},
		{"unknown operator", `
virtual_hosts:
- name: a
  domains: ["*"]
  routes:
  - match: {prefix: /}
    route: {cluster: c}
    request_headers_to_add: [{header: {key: x-a, value: "%NOPE%"}}]
`, `routes[0].request_headers_to_add[0].header.value: "%NOPE%" at position 0: unknown command operator %NOPE%`},
		{"stray percent", `
virtual_hosts:
- name: a
  domains: ["*"]
  request_headers_to_add: [{header: {key: x-a, value: "100% sure"}}]
`, `virtual_hosts[0] "a": request_headers_to_add[0].header.value: "100% sure" at position 3`},
		{"pseudo header", `
response_headers_to_remove: [":status"]
`, `response_headers_to_remove[0]: pseudo-header ":status" cannot be added or removed`},
		{"append and append_action", `
request_headers_to_add: [{header: {key: x-a, value: b}, append: true, append_action: OVERWRITE_IF_EXISTS}]
`, `request_headers_to_add[0].append: must not be set together with append_action`},
		{"weights sum to zero", `
virtual_hosts:
- name: a
  domains: ["*"]
  routes: [{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: a, weight: 0}]}}}]
`, `routes[0].route.weighted_clusters.clusters: the sum of weights must be greater than 0`},
		{"bad substitution", `
virtual_hosts:
- name: a
  domains: ["*"]
  routes: [{match: {prefix: /}, route: {cluster: c, regex_rewrite: {pattern: {regex: "^/(a)"}, substitution: "/\\2"}}}]
`, `routes[0].route.regex_rewrite.substitution: "/\\2" refers to \2 but the pattern has 1 capture groups`},
		{"unknown retry_on", `
virtual_hosts:
- name: a
  domains: ["*"]
  retry_policy: {retry_on: "5xx,sometimes"}
`, `virtual_hosts[0] "a": retry_policy.retry_on: unknown retry condition "sometimes"`},
		{"direct body too big", `
max_direct_response_body_size_bytes: 4
virtual_hosts:
- name: a
  domains: ["*"]
  routes: [{match: {prefix: /}, direct_response: {status: 200, body: {inline_string: "hello"}}}]
`, `routes[0].direct_response.body: 5 bytes exceed max_direct_response_body_size_bytes 4`},
		{"no action", `
virtual_hosts:
- {name: a, domains: ["*"], routes: [{match: {prefix: /}}]}
`, `routes[0].action: one of route, redirect, direct_response or non_forwarding_action is required`},
		{"bad header regex", `
virtual_hosts:
- name: a
  domains: ["*"]
  routes: [{match: {prefix: /, headers: [{name: x, string_match: {safe_regex: {regex: "["}}}]}, route: {cluster: c}}]
`, `routes[0].match.headers[0].string_match.safe_regex: regex `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := compileErr(t, tt.yaml)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
		})
	}
}
