package authz

import (
	"fmt"
	"sort"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"

	"github.com/waygate/waygate/filters"
)

// engine is a compiled envoy.config.rbac.v3.RBAC: an action and its
// policies, kept in name order because Envoy holds them in a sorted map
// and reports the first that matches as the effective policy.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/rbac/v3/rbac.proto#config-rbac-v3-rbac
type engine struct {
	action   rbacv3.RBAC_Action
	policies []policy
}

// policy matches when any of its permissions and any of its principals
// match.
type policy struct {
	name        string
	permissions []matcher
	principals  []matcher
}

func compileEngine(r *rbacv3.RBAC) (*engine, error) {
	e := &engine{action: r.GetAction()}
	switch e.action {
	case rbacv3.RBAC_ALLOW, rbacv3.RBAC_DENY, rbacv3.RBAC_LOG:
	default:
		return nil, fmt.Errorf("action: %v is not one of ALLOW, DENY or LOG", e.action)
	}
	names := make([]string, 0, len(r.GetPolicies()))
	for name := range r.GetPolicies() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, err := compilePolicy(name, r.GetPolicies()[name])
		if err != nil {
			return nil, fmt.Errorf("policies[%q].%w", name, err)
		}
		e.policies = append(e.policies, p)
	}
	return e, nil
}

func compilePolicy(name string, pb *rbacv3.Policy) (policy, error) {
	p := policy{name: name}
	if pb.GetCondition() != nil || pb.GetCheckedCondition() != nil || pb.GetCelConfig() != nil {
		return p, fmt.Errorf("condition: CEL conditions are not supported; express the rule with permissions and principals")
	}
	if len(pb.GetPermissions()) == 0 {
		return p, fmt.Errorf("permissions: at least one is required (use any: true to match every request)")
	}
	if len(pb.GetPrincipals()) == 0 {
		return p, fmt.Errorf("principals: at least one is required (use any: true to match every downstream)")
	}
	for i, pm := range pb.GetPermissions() {
		m, err := compilePermission(pm)
		if err != nil {
			return p, fmt.Errorf("permissions[%d].%w", i, err)
		}
		p.permissions = append(p.permissions, m)
	}
	for i, pr := range pb.GetPrincipals() {
		m, err := compilePrincipal(pr)
		if err != nil {
			return p, fmt.Errorf("principals[%d].%w", i, err)
		}
		p.principals = append(p.principals, m)
	}
	return p, nil
}

func (p *policy) match(x *filters.Exchange) bool {
	return orMatch(p.permissions).match(x) && orMatch(p.principals).match(x)
}

// matched returns the name of the first policy (in name order) that
// matches, and whether one did.
func (e *engine) matched(x *filters.Exchange) (string, bool) {
	for i := range e.policies {
		if e.policies[i].match(x) {
			return e.policies[i].name, true
		}
	}
	return "", false
}

// allows is Envoy's RoleBasedAccessControlEngineImpl::handleAction: ALLOW
// lets a request through when a policy matches, DENY when none does, and
// LOG always lets it through (the match only marks it for logging).
func (e *engine) allows(x *filters.Exchange) (allowed bool, policyID string, matched bool) {
	policyID, matched = e.matched(x)
	switch e.action {
	case rbacv3.RBAC_ALLOW:
		return matched, policyID, matched
	case rbacv3.RBAC_DENY:
		return !matched, policyID, matched
	}
	return true, policyID, matched
}
