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

// customAuthzFilters are the filters of CUSTOM policies, a pair per
// extension provider (sorted by name): an RBAC filter whose shadow rules
// are the policies' rules, under the istio_ext_authz_ prefix, and the
// provider's ext_authz filter, enabled only when that shadow evaluation
// matched one of the provider's policies. A provider that does not
// resolve fails closed as in istiod: the policies' rules become a DENY
// RBAC filter, named ...-deny-due-to-bad-CUSTOM-action. Dry-run CUSTOM
// policies are left out with a warning (istiod would enforce them).
// https://istio.io/latest/docs/tasks/security/authorization/authz-custom/
func (t *translator) customAuthzFilters(policies []*security.AuthorizationPolicy) []*hcmv3.HttpFilter {
	byProvider := map[string][]*security.AuthorizationPolicy{}
	for _, p := range policies {
		if t.isDryRun(p) {
			t.warn(authzKey(p), "metadata.annotations["+dryRunAnnotation+"]", "dry-run is not supported for CUSTOM policies; the policy is ignored")
			continue
		}
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
		prefix := extAuthzPolicyPrefix + "-"
		if provider != "" {
			prefix += provider + "-"
		}
		rules, _ := t.buildRBAC(ps, rbacv3.RBAC_DENY, prefix)
		if rules == nil {
			rules = &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: map[string]*rbacv3.Policy{}}
		}
		cfg, err := t.extAuthzProvider(provider)
		if err != nil {
			for _, p := range ps {
				t.warn(authzKey(p), "spec.provider.name", "%v; the requests the policy matches are denied", err)
			}
			deny := &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: map[string]*rbacv3.Policy{}}
			for name, pol := range rules.Policies {
				deny.Policies[name+badCustomSuffix] = pol
			}
			out = append(out, rbacHTTPFilter(&rbachttpv3.RBAC{Rules: deny}))
			continue
		}
		cfg.FilterEnabledMetadata = extAuthzEnabledFor(provider)
		out = append(out,
			rbacHTTPFilter(&rbachttpv3.RBAC{ShadowRules: rules, ShadowRulesStatPrefix: extAuthzShadowPrefix}),
			&hcmv3.HttpFilter{Name: extAuthzFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: deterministicAny(cfg)}},
		)
	}
	return out
}
