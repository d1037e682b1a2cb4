package authz

import (
	"net/netip"
	"testing"

	"github.com/waygate/waygate/filters"
)

// FuzzRBACRequest evaluates arbitrary requests against a config with
// every matcher kind: evaluation never panics, and a denial always
// carries Envoy's body and details.
func FuzzRBACRequest(f *testing.F) {
	fac := mustNew(f, `rules { action: DENY
		policies { key: "a" value {
			permissions { and_rules { rules { url_path { path { prefix: "/admin" ignore_case: true } } } rules { header { name: ":method" string_match { exact: "DELETE" } } } } }
			permissions { header { name: "x-n" range_match { start: 1 end: 5 } } }
			permissions { not_rule { header { name: ":authority" string_match { contains: "EXAMPLE" ignore_case: true } } } }
			principals { or_ids { ids { remote_ip { address_prefix: "10.0.0.0" prefix_len { value: 8 } } } ids { header { name: "x-user" string_match { safe_regex { regex: "evil.*" } } } } } }
			principals { metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "groups" } value { list_match { one_of { string_match { suffix: "-banned" } } } } } }
		} } }`, nil)
	f.Add("GET", "/admin/x?y", "example.com", "evil", "3", "1.2.3.4:5", "g-banned")
	f.Add("DELETE", "/ADMIN", "", "", "", "[::1]:1", "")
	f.Fuzz(func(t *testing.T, method, path, host, user, n, remote, group string) {
		if _, err := netip.ParseAddrPort(remote); err != nil {
			remote = "127.0.0.1:1"
		}
		r := req{method: method, path: path, host: host, hdr: []string{"X-User", user, "X-N", n}, remote: remote,
			md: map[string]map[string]any{"envoy.filters.http.jwt_authn": {"payload": map[string]any{"groups": []any{group, 7.0, nil}}}}}
		x := r.exchange()
		if st := run(fac, x); st == filters.Stop {
			if rep := x.LocalReply(); rep == nil || rep.Status != 403 || rep.Body != "RBAC: access denied" || rep.Details != "rbac_access_denied_matched_policy[a]" {
				t.Fatalf("denial %+v", rep)
			}
		}
	})
}
