package translate

import (
	"fmt"
	"sort"
	"strconv"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	securityv1beta1 "istio.io/api/security/v1beta1"
	security "istio.io/client-go/pkg/apis/security/v1"

	"github.com/waygate/waygate/gateway/istio"
)

// rbacFilter is the name istiod gives both of its RBAC filters.
const rbacFilter = "envoy.filters.http.rbac"

// rootNamespace is Istio's default meshConfig.rootNamespace: policies
// there without a selector apply to every workload of the mesh.
const rootNamespace = "istio-system"

// dryRunAnnotation makes a policy evaluated in shadow mode only.
// https://istio.io/latest/docs/tasks/security/authorization/authz-dry-run/
const dryRunAnnotation = "istio.io/dry-run"

// Shadow stat prefixes istiod uses, which also prefix the dynamic
// metadata keys of shadow results (istio_dry_run_allow_shadow_engine_result).
const (
	dryRunAllowPrefix = "istio_dry_run_allow_"
	dryRunDenyPrefix  = "istio_dry_run_deny_"
)

// authzPolicies are the AuthorizationPolicies that apply to the proxy,
// by action.
type authzPolicies struct {
	custom, audit, deny, allow []*security.AuthorizationPolicy
}

// selectAuthorizationPolicies picks the policies istiod would give this
// gateway: those in the root namespace or the proxy's namespace whose
// selector is empty or matches the proxy's labels. Policies with
// targetRefs attach to Gateway API resources Waygate does not translate;
// they are left out with a warning rather than applied too widely.
// https://istio.io/latest/docs/reference/config/security/authorization-policy/
func (t *translator) selectAuthorizationPolicies() authzPolicies {
	var out authzPolicies
	policies := append([]*security.AuthorizationPolicy(nil), t.cfg.AuthorizationPolicies...)
	sort.SliceStable(policies, func(i, j int) bool {
		if policies[i].Namespace != policies[j].Namespace {
			return policies[i].Namespace < policies[j].Namespace
		}
		return policies[i].Name < policies[j].Name
	})
	for _, p := range policies {
		if p.Namespace != rootNamespace && p.Namespace != t.proxy.Namespace {
			continue
		}
		spec := &p.Spec
		if spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0 {
			t.warn(authzKey(p), "spec.targetRefs", "targetRefs attach a policy to Gateway API resources, which Waygate does not translate; the policy is ignored (use selector)")
			continue
		}
		if !labelsMatch(spec.GetSelector().GetMatchLabels(), t.proxy.Labels) {
			continue
		}
		switch spec.GetAction() {
		case securityv1beta1.AuthorizationPolicy_ALLOW:
			out.allow = append(out.allow, p)
		case securityv1beta1.AuthorizationPolicy_DENY:
			out.deny = append(out.deny, p)
		case securityv1beta1.AuthorizationPolicy_AUDIT:
			out.audit = append(out.audit, p)
		case securityv1beta1.AuthorizationPolicy_CUSTOM:
			out.custom = append(out.custom, p)
		}
	}
	return out
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func authzKey(p *security.AuthorizationPolicy) istio.Key {
	return istio.Key{Kind: "AuthorizationPolicy", Namespace: p.Namespace, Name: p.Name}
}

// authzHTTPFilters are the HTTP filters of the proxy's
// AuthorizationPolicies in istiod's order: the CUSTOM pair (RBAC in
// shadow mode, then ext_authz), then one RBAC filter each for AUDIT,
// DENY and ALLOW policies. None when no policy applies: without an
// ALLOW policy every request not denied is allowed.
func (t *translator) authzHTTPFilters() []*hcmv3.HttpFilter {
	if t.authz == nil {
		t.authz = &authzChain{filters: t.buildAuthzHTTPFilters()}
	}
	return t.authz.filters
}

// authzChain is the authorization filters of a translation, built once
// and shared by every HTTP connection manager, so each policy problem
// is warned about once.
type authzChain struct {
	filters []*hcmv3.HttpFilter
}

func (t *translator) buildAuthzHTTPFilters() []*hcmv3.HttpFilter {
	ps := t.selectAuthorizationPolicies()
	var out []*hcmv3.HttpFilter
	out = append(out, t.customAuthzFilters(ps.custom)...)
	for _, group := range []struct {
		policies []*security.AuthorizationPolicy
		action   rbacv3.RBAC_Action
	}{
		{ps.audit, rbacv3.RBAC_LOG},
		{ps.deny, rbacv3.RBAC_DENY},
		{ps.allow, rbacv3.RBAC_ALLOW},
	} {
		if len(group.policies) == 0 {
			continue
		}
		rules, shadow := t.buildRBAC(group.policies, group.action, "")
		out = append(out, rbacHTTPFilter(&rbachttpv3.RBAC{
			Rules:                 rules,
			ShadowRules:           shadow,
			ShadowRulesStatPrefix: shadowRulesStatPrefix(shadow),
		}))
	}
	return out
}

// shadowRulesStatPrefix is istiod's choice of prefix by the shadow
// action. Like istiod it reads the action of a nil RBAC as ALLOW, so a
// filter without dry-run policies still says istio_dry_run_allow_.
func shadowRulesStatPrefix(shadow *rbacv3.RBAC) string {
	switch shadow.GetAction() {
	case rbacv3.RBAC_ALLOW:
		return dryRunAllowPrefix
	case rbacv3.RBAC_DENY:
		return dryRunDenyPrefix
	}
	return ""
}

// matchNever is the policy of an AuthorizationPolicy without rules: it
// matches no request, so as an ALLOW policy it allows nothing.
func matchNever() *rbacv3.Policy {
	return &rbacv3.Policy{
		Permissions: []*rbacv3.Permission{permissionNot(permissionAny())},
		Principals:  []*rbacv3.Principal{principalNot(principalAny())},
	}
}

// buildRBAC turns policies of one action into the enforced and the
// dry-run RBAC configs, either nil when no policy goes there. Policy
// names are ns[<ns>]-policy[<name>]-rule[<i>], with namePrefix before
// them for CUSTOM policies.
func (t *translator) buildRBAC(policies []*security.AuthorizationPolicy, action rbacv3.RBAC_Action, namePrefix string) (rules, shadow *rbacv3.RBAC) {
	enforced := &rbacv3.RBAC{Action: action, Policies: map[string]*rbacv3.Policy{}}
	dry := &rbacv3.RBAC{Action: action, Policies: map[string]*rbacv3.Policy{}}
	var hasEnforced, hasDry bool
	for _, p := range policies {
		cur := enforced
		if t.isDryRun(p) {
			cur, hasDry = dry, true
		} else {
			hasEnforced = true
		}
		name := func(i int) string {
			return fmt.Sprintf("%sns[%s]-policy[%s]-rule[%d]", namePrefix, p.Namespace, p.Name, i)
		}
		rs := p.Spec.GetRules()
		for i, r := range rs {
			field := "spec.rules[" + strconv.Itoa(i) + "]"
			if r == nil {
				t.warn(authzKey(p), field, "empty rule skipped")
				continue
			}
			m, err := newRuleModel(p.Namespace, r)
			if err != nil {
				t.warn(authzKey(p), field, "rule skipped: %v", err)
				continue
			}
			pol, err := m.generate(action)
			if err != nil {
				t.warn(authzKey(p), field, "rule skipped: %v", err)
				continue
			}
			cur.Policies[name(i)] = pol
		}
		if len(rs) == 0 {
			cur.Policies[name(0)] = matchNever()
		}
	}
	if hasEnforced {
		rules = enforced
	}
	if hasDry {
		shadow = dry
	}
	return rules, shadow
}

func (t *translator) isDryRun(p *security.AuthorizationPolicy) bool {
	v, ok := p.Annotations[dryRunAnnotation]
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		t.warn(authzKey(p), "metadata.annotations["+dryRunAnnotation+"]", "%q is not a boolean; the policy is enforced", v)
		return false
	}
	return b
}

func rbacHTTPFilter(cfg *rbachttpv3.RBAC) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: rbacFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: deterministicAny(cfg)}}
}

// deterministicAny wraps m with map entries in key order, so an RBAC
// config with several policies marshals to the same bytes on every
// translation and an unchanged policy set is not pushed again.
func deterministicAny(m proto.Message) *anypb.Any {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: b}
}

// withAuthzFilters places the authorization filters in chain, right
// after jwt_authn when the chain has it (RBAC reads the claims it
// verifies), else first: istiod's order is jwt_authn, ext_authz, rbac,
// then everything else.
func withAuthzFilters(chain, authz []*hcmv3.HttpFilter) []*hcmv3.HttpFilter {
	if len(authz) == 0 {
		return chain
	}
	at := 0
	for i, f := range chain {
		if f.GetName() == jwtFilterName {
			at = i + 1
		}
	}
	out := make([]*hcmv3.HttpFilter, 0, len(chain)+len(authz))
	out = append(out, chain[:at]...)
	out = append(out, authz...)
	return append(out, chain[at:]...)
}
