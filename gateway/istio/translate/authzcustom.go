package translate

import (
	"sort"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	security "istio.io/client-go/pkg/apis/security/v1"
)

// Names istiod gives CUSTOM policies: the ext_authz filter runs only for
// requests whose shadow RBAC result names a policy with this prefix.
const (
	extAuthzPolicyPrefix = "istio-ext-authz"
	badCustomSuffix      = "-deny-due-to-bad-CUSTOM-action"
)

// customAuthzFilters are the filters of CUSTOM policies. Waygate does not
// read meshConfig.extensionProviders yet, so no provider resolves, and
// like istiod for an unknown provider it fails closed: the policies'
// rules become a DENY RBAC filter, each policy named
// istio-ext-authz-<provider>-ns[..]-policy[..]-rule[..]-deny-due-to-bad-CUSTOM-action.
func (t *translator) customAuthzFilters(policies []*security.AuthorizationPolicy) []*hcmv3.HttpFilter {
	byProvider := map[string][]*security.AuthorizationPolicy{}
	for _, p := range policies {
		name := p.Spec.GetProvider().GetName()
		byProvider[name] = append(byProvider[name], p)
	}
	providers := make([]string, 0, len(byProvider))
	for name := range byProvider {
		providers = append(providers, name)
	}
	sort.Strings(providers)
	var out []*hcmv3.HttpFilter
	for _, provider := range providers {
		ps := byProvider[provider]
		for _, p := range ps {
			t.warn(authzKey(p), "spec.provider.name", "extension provider %q is not defined (Waygate does not read meshConfig.extensionProviders yet); the requests the policy matches are denied", provider)
		}
		prefix := extAuthzPolicyPrefix + "-"
		if provider != "" {
			prefix += provider + "-"
		}
		rules, _ := t.buildRBAC(ps, rbacv3.RBAC_DENY, prefix)
		deny := &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: map[string]*rbacv3.Policy{}}
		if rules != nil {
			for name, pol := range rules.Policies {
				deny.Policies[name+badCustomSuffix] = pol
			}
		}
		out = append(out, rbacHTTPFilter(&rbachttpv3.RBAC{Rules: deny}))
	}
	return out
}
