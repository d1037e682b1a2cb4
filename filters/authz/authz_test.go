package authz

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

// testRoute is the view of a matched route the filter reads.
type testRoute struct{ per map[string]any }

func (r *testRoute) Name() string                    { return "r1" }
func (r *testRoute) VirtualHost() string             { return "vh1" }
func (r *testRoute) Cluster() string                 { return "c1" }
func (r *testRoute) PerFilterConfig(name string) any { return r.per[name] }

// req describes the request of a test row.
type req struct {
	method, path, host string
	hdr                []string
	remote, local      string
	sni                string
	tls                bool
	md                 map[string]map[string]any
}

func (r req) exchange() *filters.Exchange {
	h := http.Header{}
	for i := 0; i+1 < len(r.hdr); i += 2 {
		h.Add(r.hdr[i], r.hdr[i+1])
	}
	x := &filters.Exchange{
		Context:  context.Background(),
		Request:  filters.Request{Method: "GET", Scheme: "http", Authority: "bookinfo.example", Path: "/productpage", Header: h},
		Metadata: r.md,
	}
	if r.method != "" {
		x.Request.Method = r.method
	}
	if r.path != "" {
		x.Request.Path = r.path
	}
	if r.host != "" {
		x.Request.Authority = r.host
	}
	x.Downstream.RemoteAddr = netip.MustParseAddrPort(or(r.remote, "127.0.0.1:40000"))
	x.Downstream.LocalAddr = netip.MustParseAddrPort(or(r.local, "127.0.0.1:8080"))
	if r.tls || r.sni != "" {
		x.Downstream.TLS = &tls.ConnectionState{ServerName: r.sni}
	}
	return x
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func parse(t testing.TB, text string) *rbacv3.RBAC {
	t.Helper()
	pb := &rbacv3.RBAC{}
	if err := prototext.Unmarshal([]byte(text), pb); err != nil {
		t.Fatalf("config: %v", err)
	}
	return pb
}

func mustNew(t testing.TB, text string, st filters.Stats) *Factory {
	t.Helper()
	f, err := New(parse(t, text), filters.Env{Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// run drives the filter over x and returns the status.
func run(f *Factory, x *filters.Exchange) filters.Status {
	fl := f.NewFilter(x)
	if fl == nil {
		return filters.Continue
	}
	return fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true)
}

// allow wraps one policy named "p" in an ALLOW engine.
func allow(permission, principal string) string {
	return `rules { action: ALLOW policies { key: "p" value { permissions { ` + permission + ` } principals { ` + principal + ` } } } }`
}

const anyID = `any: true`

func TestRBAC(t *testing.T) {
	jwt := map[string]map[string]any{"envoy.filters.http.jwt_authn": {"payload": map[string]any{
		"iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io",
		"aud": []any{"a1", "a2"}, "groups": []any{"group1"}, "exp": float64(4685989700), "admin": true,
		"nested": map[string]any{"key": "v"},
	}}}
	tests := []struct {
		name    string
		cfg     string
		req     req
		allowed bool
		policy  string // matched policy in the details of a denial
	}{
		{"allow nothing", `rules {}`, req{}, false, "none"},
		{"no rules allows", ``, req{}, true, ""},
		{"allow any", allow(`any: true`, anyID), req{}, true, ""},
		{"method GET allowed", allow(`header { name: ":method" string_match { exact: "GET" } }`, anyID), req{method: "GET"}, true, ""},
		{"method POST denied", allow(`header { name: ":method" string_match { exact: "GET" } }`, anyID), req{method: "POST"}, false, "none"},
		{"deny matches", `rules { action: DENY policies { key: "d" value { permissions { header { name: ":method" string_match { exact: "POST" } } } principals { any: true } } } }`, req{method: "POST"}, false, "d"},
		{"deny misses", `rules { action: DENY policies { key: "d" value { permissions { header { name: ":method" string_match { exact: "POST" } } } principals { any: true } } } }`, req{method: "GET"}, true, ""},
		{"log always allows", `rules { action: LOG policies { key: "l" value { permissions { any: true } principals { any: true } } } }`, req{}, true, ""},
		{"first policy by name", `rules { action: DENY policies { key: "b" value { permissions { any: true } principals { any: true } } } policies { key: "a" value { permissions { any: true } principals { any: true } } } }`, req{}, false, "a"},
		{"url_path prefix ignores query", allow(`url_path { path { prefix: "/reviews" } }`, anyID), req{path: "/reviews/1?x=/other"}, true, ""},
		{"url_path exact ignores query", allow(`url_path { path { exact: "/productpage" } }`, anyID), req{path: "/productpage?u=normal"}, true, ""},
		{"url_path exact misses", allow(`url_path { path { exact: "/productpage" } }`, anyID), req{path: "/productpage/x"}, false, "none"},
		{"url_path suffix", allow(`url_path { path { suffix: ".css" } }`, anyID), req{path: "/static/a.css"}, true, ""},
		{"url_path regex", allow(`url_path { path { safe_regex { regex: "/api/v[0-9]+/.*" } } }`, anyID), req{path: "/api/v2/users"}, true, ""},
		{"host ignore case", allow(`header { name: ":authority" string_match { exact: "bookinfo.example" ignore_case: true } }`, anyID), req{host: "BookInfo.Example"}, true, ""},
		{"header present", allow(`header { name: "x-token" present_match: true }`, anyID), req{hdr: []string{"X-Token", "t"}}, true, ""},
		{"header missing", allow(`header { name: "x-token" present_match: true }`, anyID), req{}, false, "none"},
		{"header invert", allow(`header { name: "x-token" present_match: true invert_match: true }`, anyID), req{}, true, ""},
		{"header joined values", allow(`header { name: "x-v" string_match { exact: "a,b" } }`, anyID), req{hdr: []string{"X-V", "a", "X-V", "b"}}, true, ""},
		{"header range", allow(`header { name: "x-n" range_match { start: 1 end: 10 } }`, anyID), req{hdr: []string{"X-N", "9"}}, true, ""},
		{"and_rules all", allow(`and_rules { rules { header { name: ":method" string_match { exact: "GET" } } } rules { url_path { path { prefix: "/reviews" } } } }`, anyID), req{path: "/reviews"}, true, ""},
		{"and_rules one misses", allow(`and_rules { rules { header { name: ":method" string_match { exact: "GET" } } } rules { url_path { path { prefix: "/reviews" } } } }`, anyID), req{path: "/ratings"}, false, "none"},
		{"or_rules", allow(`or_rules { rules { url_path { path { prefix: "/a" } } } rules { url_path { path { prefix: "/b" } } } }`, anyID), req{path: "/b"}, true, ""},
		{"not_rule", allow(`not_rule { url_path { path { prefix: "/admin" } } }`, anyID), req{path: "/admin"}, false, "none"},
		{"destination_port", allow(`destination_port: 8080`, anyID), req{local: "127.0.0.1:8080"}, true, ""},
		{"destination_port misses", allow(`destination_port: 443`, anyID), req{local: "127.0.0.1:8080"}, false, "none"},
		{"destination_port_range", allow(`destination_port_range { start: 8000 end: 9000 }`, anyID), req{local: "127.0.0.1:8080"}, true, ""},
		{"destination_ip", allow(`destination_ip { address_prefix: "10.0.0.0" prefix_len { value: 8 } }`, anyID), req{local: "10.1.2.3:8080"}, true, ""},
		{"requested_server_name", allow(`requested_server_name { suffix: ".example.com" }`, anyID), req{sni: "api.example.com"}, true, ""},
		{"requested_server_name plaintext", allow(`requested_server_name { suffix: ".example.com" }`, anyID), req{}, false, "none"},
		{"direct_remote_ip", allow(anyID, `direct_remote_ip { address_prefix: "127.0.0.1" prefix_len { value: 32 } }`), req{}, true, ""},
		{"direct_remote_ip v4 in v6", allow(anyID, `direct_remote_ip { address_prefix: "127.0.0.0" prefix_len { value: 8 } }`), req{remote: "[::ffff:127.0.0.9]:1"}, true, ""},
		{"remote_ip misses", allow(anyID, `remote_ip { address_prefix: "10.0.0.0" prefix_len { value: 8 } }`), req{}, false, "none"},
		{"source_ip", allow(anyID, `source_ip { address_prefix: "::1" prefix_len { value: 128 } }`), req{remote: "[::1]:5"}, true, ""},
		{"principal header", allow(anyID, `header { name: "end-user" string_match { exact: "jason" } }`), req{hdr: []string{"End-User", "jason"}}, true, ""},
		{"principal url_path", allow(anyID, `url_path { path { prefix: "/public" } }`), req{path: "/public/x"}, true, ""},
		{"authenticated needs TLS", allow(anyID, `authenticated {}`), req{}, false, "none"},
		{"authenticated any TLS", allow(anyID, `authenticated {}`), req{tls: true}, true, ""},
		{"not_id", allow(anyID, `not_id { direct_remote_ip { address_prefix: "127.0.0.1" prefix_len { value: 32 } } }`), req{}, false, "none"},
		{"or_ids", allow(anyID, `or_ids { ids { remote_ip { address_prefix: "10.0.0.1" prefix_len { value: 32 } } } ids { header { name: "x" present_match: true } } }`), req{hdr: []string{"X", "1"}}, true, ""},
		{"and_ids", allow(anyID, `and_ids { ids { any: true } ids { header { name: "x" present_match: true } } }`), req{}, false, "none"},
		{"jwt issuer and subject", allow(anyID, `and_ids { ids { metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "iss" } value { string_match { exact: "testing@secure.istio.io" } } } } ids { metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "sub" } value { string_match { exact: "testing@secure.istio.io" } } } } }`), req{md: jwt}, true, ""},
		{"jwt missing", allow(anyID, `metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "iss" } value { string_match { exact: "testing@secure.istio.io" } } }`), req{}, false, "none"},
		{"jwt audience in list", allow(anyID, `metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "aud" } value { or_match { value_matchers { list_match { one_of { string_match { exact: "a2" } } } } value_matchers { string_match { exact: "a2" } } } } }`), req{md: jwt}, true, ""},
		{"jwt claim not in list", allow(anyID, `metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "groups" } value { list_match { one_of { string_match { exact: "group2" } } } } }`), req{md: jwt}, false, "none"},
		{"jwt nested claim", allow(anyID, `metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "nested" } path { key: "key" } value { string_match { exact: "v" } } }`), req{md: jwt}, true, ""},
		{"jwt bool claim", allow(anyID, `metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "admin" } value { bool_match: true } }`), req{md: jwt}, true, ""},
		{"jwt number range", allow(anyID, `metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "exp" } value { double_match { range { start: 0 end: 5e9 } } } }`), req{md: jwt}, true, ""},
		{"metadata present", allow(anyID, `metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } value { present_match: true } }`), req{md: jwt}, true, ""},
		{"metadata invert", allow(anyID, `metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } value { present_match: true } invert: true }`), req{}, true, ""},
		{"permission metadata", allow(`metadata { filter: "istio_authn" path { key: "request.auth.principal" } value { string_match { prefix: "iss/" } } }`, anyID), req{md: map[string]map[string]any{"istio_authn": {"request.auth.principal": "iss/sub"}}}, true, ""},
		{"any permission of several", `rules { policies { key: "p" value { permissions { url_path { path { exact: "/a" } } } permissions { url_path { path { exact: "/productpage" } } } principals { any: true } } } }`, req{}, true, ""},
		{"any principal of several", `rules { policies { key: "p" value { permissions { any: true } principals { header { name: "x" present_match: true } } principals { any: true } } } }`, req{}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := stats.NewStore()
			f := mustNew(t, tt.cfg, store.Scope("http.ingress.").Filters())
			x := tt.req.exchange()
			st := run(f, x)
			if got := st == filters.Continue; got != tt.allowed {
				t.Fatalf("allowed = %v, want %v (reply %+v)", got, tt.allowed, x.LocalReply())
			}
			if tt.allowed {
				if x.LocalReply() != nil {
					t.Fatalf("allowed with a local reply %+v", x.LocalReply())
				}
				return
			}
			r := x.LocalReply()
			if r == nil || r.Status != 403 || r.Body != "RBAC: access denied" {
				t.Fatalf("reply = %+v, want 403 RBAC: access denied", r)
			}
			if want := "rbac_access_denied_matched_policy[" + tt.policy + "]"; r.Details != want {
				t.Errorf("details = %q, want %q", r.Details, want)
			}
			if v := store.Counter("http.ingress.rbac.denied").Value(); v != 1 {
				t.Errorf("rbac.denied = %d, want 1", v)
			}
		})
	}
}

func TestShadowRules(t *testing.T) {
	store := stats.NewStore()
	f := mustNew(t, `
		rules { action: ALLOW policies { key: "all" value { permissions { any: true } principals { any: true } } } }
		rules_stat_prefix: "enforced_"
		shadow_rules { action: DENY policies { key: "ns[foo]-policy[dry]-rule[0]" value { permissions { header { name: ":method" string_match { exact: "POST" } } } principals { any: true } } } }
		shadow_rules_stat_prefix: "istio_dry_run_deny_"`, store.Scope("http.ingress.").Filters())

	post := req{method: "POST"}.exchange()
	if st := run(f, post); st != filters.Continue {
		t.Fatalf("shadow rules must not enforce: %v %+v", st, post.LocalReply())
	}
	md := post.Metadata[FilterName]
	if got := md["istio_dry_run_deny_shadow_effective_policy_id"]; got != "ns[foo]-policy[dry]-rule[0]" {
		t.Errorf("shadow_effective_policy_id = %v", got)
	}
	if got := md["istio_dry_run_deny_shadow_engine_result"]; got != "denied" {
		t.Errorf("shadow_engine_result = %v, want denied", got)
	}

	get := req{}.exchange()
	run(f, get)
	md = get.Metadata[FilterName]
	if _, ok := md["istio_dry_run_deny_shadow_effective_policy_id"]; ok {
		t.Errorf("no policy matched, but shadow_effective_policy_id = %v", md["istio_dry_run_deny_shadow_effective_policy_id"])
	}
	if got := md["istio_dry_run_deny_shadow_engine_result"]; got != "allowed" {
		t.Errorf("shadow_engine_result = %v, want allowed", got)
	}
	for name, want := range map[string]uint64{
		"http.ingress.rbac.istio_dry_run_deny_shadow_denied":  1,
		"http.ingress.rbac.istio_dry_run_deny_shadow_allowed": 1,
		"http.ingress.rbac.enforced_allowed":                  2,
	} {
		if v := store.Counter(name).Value(); v != want {
			t.Errorf("%s = %d, want %d", name, v, want)
		}
	}
}

func TestLogAction(t *testing.T) {
	store := stats.NewStore()
	f := mustNew(t, `rules { action: LOG policies { key: "l" value { permissions { url_path { path { prefix: "/admin" } } } principals { any: true } } } }`, store.Scope("http.ingress.").Filters())
	x := req{path: "/admin/x"}.exchange()
	if st := run(f, x); st != filters.Continue {
		t.Fatalf("LOG must not deny: %v", st)
	}
	if got := x.Metadata["envoy.common"]["access_log_hint"]; got != true {
		t.Errorf("access_log_hint = %v, want true", got)
	}
	run(f, req{path: "/other"}.exchange())
	if a, b := store.Counter("http.ingress.rbac.logged").Value(), store.Counter("http.ingress.rbac.not_logged").Value(); a != 1 || b != 1 {
		t.Errorf("logged = %d, not_logged = %d, want 1 and 1", a, b)
	}
}

func TestPerRoute(t *testing.T) {
	f := mustNew(t, `rules {}`, nil) // denies everything
	compile := func(text string) any {
		pb := &rbacv3.RBACPerRoute{}
		if err := prototext.Unmarshal([]byte(text), pb); err != nil {
			t.Fatal(err)
		}
		c, err := buildRoute(pb)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name    string
		per     any
		allowed bool
	}{
		{"listener config", nil, false},
		{"disabled by an empty RBACPerRoute", compile(``), true},
		{"override allows", compile(`rbac { rules { policies { key: "p" value { permissions { any: true } principals { any: true } } } } }`), true},
		{"override denies", compile(`rbac { rules { action: DENY policies { key: "p" value { permissions { any: true } principals { any: true } } } } }`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := req{}.exchange()
			if tt.per != nil {
				x.Route = &testRoute{per: map[string]any{FilterName: tt.per}}
			}
			if got := run(f, x) == filters.Continue; got != tt.allowed {
				t.Errorf("allowed = %v, want %v", got, tt.allowed)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, cfg, want string
	}{
		{"matcher form", `matcher {}`, "matcher: the xDS matcher API form"},
		{"shadow matcher form", `shadow_matcher {}`, "shadow_matcher:"},
		{"no permissions", `rules { policies { key: "p" value { principals { any: true } } } }`, `rules.policies["p"].permissions: at least one`},
		{"no principals", `rules { policies { key: "p" value { permissions { any: true } } } }`, `rules.policies["p"].principals: at least one`},
		{"bad regex", allow(`url_path { path { safe_regex { regex: "(" } } }`, anyID), `rules.policies["p"].permissions[0].url_path.path.safe_regex: regex "("`},
		{"bad cidr", allow(anyID, `remote_ip { address_prefix: "nope" }`), `principals[0].remote_ip.address_prefix: "nope" is not an IP address`},
		{"prefix too long", allow(anyID, `remote_ip { address_prefix: "10.0.0.1" prefix_len { value: 33 } }`), "prefix_len: 33"},
		{"filter state", allow(anyID, `filter_state { key: "io.istio.peer_principal" string_match { exact: "x" } }`), "filter_state: not supported"},
		{"uri template", allow(`uri_template { name: "t" }`, anyID), "uri_template: not supported"},
		{"cel condition", `rules { policies { key: "p" value { permissions { any: true } principals { any: true } condition {} } } }`, "condition: CEL"},
		{"empty permission", allow(``, anyID), "rule: one of"},
		{"metadata without filter", allow(anyID, `metadata { path { key: "a" } value { present_match: true } }`), "metadata.filter:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(parse(t, tt.cfg), filters.Env{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	if _, ok := filters.Lookup(TypeURL); !ok {
		t.Errorf("%s not registered", TypeURL)
	}
	if _, ok := filters.LookupRouteConfig(PerRouteTypeURL); !ok {
		t.Errorf("%s not registered for routes", PerRouteTypeURL)
	}
}
