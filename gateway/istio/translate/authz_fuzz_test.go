package translate

import (
	"testing"
	"unicode/utf8"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	securityv1beta1 "istio.io/api/security/v1beta1"

	"github.com/waygate/waygate/filters/authz"
)

// FuzzAuthzRule translates rules with arbitrary values and condition
// keys: translation never panics, and whatever it generates the
// gateway's RBAC filter accepts, so no AuthorizationPolicy can get a
// listener NACKed.
func FuzzAuthzRule(f *testing.F) {
	f.Add("request.headers[x-user]", "alice*", "/api/{*}/x/{**}", "10.0.0.0/8", "iss/sub", "8080")
	f.Add("request.auth.claims[a][b]", "*", "*.css", "::1", "*", "x")
	f.Add("experimental.envoy.filters.a.b[c]", "[v]", "/{", "1.2.3.4/33", "*/sub", "70000")
	f.Add("source.ip", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, key, value, path, ip, principal, port string) {
		for _, s := range []string{key, value, path, ip, principal, port} {
			if !utf8.ValidString(s) {
				return // proto strings, as the loader makes them, are UTF-8
			}
		}
		r := &securityv1beta1.Rule{
			From: []*securityv1beta1.Rule_From{{Source: &securityv1beta1.Source{
				Principals: []string{principal}, RequestPrincipals: []string{principal}, NotRequestPrincipals: []string{value},
				IpBlocks: []string{ip}, NotRemoteIpBlocks: []string{ip}, Namespaces: []string{value}, ServiceAccounts: []string{value}, TrustDomains: []string{value},
			}}},
			To: []*securityv1beta1.Rule_To{{Operation: &securityv1beta1.Operation{
				Hosts: []string{value}, Methods: []string{value}, Paths: []string{path}, NotPaths: []string{path}, Ports: []string{port},
			}}},
			When: []*securityv1beta1.Condition{{Key: key, Values: []string{value}, NotValues: []string{path}}},
		}
		for _, action := range []rbacv3.RBAC_Action{rbacv3.RBAC_ALLOW, rbacv3.RBAC_DENY} {
			m, err := newRuleModel("default", r)
			if err != nil {
				return
			}
			pol, err := m.generate(action)
			if err != nil {
				continue
			}
			cfg := &rbachttpv3.RBAC{Rules: &rbacv3.RBAC{Action: action, Policies: map[string]*rbacv3.Policy{"p": pol}}}
			if _, err := authz.Compile(cfg); err != nil {
				t.Fatalf("generated RBAC refused by the gateway: %v", err)
			}
		}
	})
}
