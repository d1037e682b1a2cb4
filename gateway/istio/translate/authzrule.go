package translate

import (
	"fmt"
	"regexp"
	"strings"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	securityv1beta1 "istio.io/api/security/v1beta1"
)

// attribute is one key of an AuthorizationPolicy rule (a from/to field
// or a when condition) with its values and notValues. A key turns each
// value into a matcher (one, OR'ed) or, for the JWT keys istiod
// aggregates, all values into one matcher (all).
type attribute struct {
	key               string
	values, notValues []string
	perm              func(v string) (*rbacv3.Permission, error)
	permAll           func(vs []string) (*rbacv3.Permission, error)
	princ             func(v string) (*rbacv3.Principal, error)
	princAll          func(vs []string) (*rbacv3.Principal, error)
}

// ruleModel is one rule consolidated the way istiod's authz model does
// it: one permission per to (each also carrying the when conditions
// about the request's destination) and one principal per from (each
// carrying the conditions about the source).
type ruleModel struct {
	permissions [][]attribute
	principals  [][]attribute
}

// newRuleModel follows pilot/pkg/security/authz/model.New: when
// conditions go after from/to fields; from/to fields are inserted in
// front, so their order in the output is the reverse of insertion.
func newRuleModel(ns string, r *securityv1beta1.Rule) (*ruleModel, error) {
	var basePerm, basePrinc []attribute
	for _, w := range r.GetWhen() {
		a, isPerm, err := whenAttribute(ns, w.GetKey())
		if err != nil {
			return nil, err
		}
		a.values, a.notValues = w.GetValues(), w.GetNotValues()
		if len(a.values) == 0 && len(a.notValues) == 0 {
			continue
		}
		if isPerm {
			basePerm = append(basePerm, a)
		} else {
			basePrinc = append(basePrinc, a)
		}
	}
	front := func(list []attribute, a attribute, values, notValues []string) []attribute {
		if len(values) == 0 && len(notValues) == 0 {
			return list
		}
		a.values, a.notValues = values, notValues
		return append([]attribute{a}, list...)
	}
	m := &ruleModel{}
	for _, from := range r.GetFrom() {
		list := append([]attribute(nil), basePrinc...)
		if s := from.GetSource(); s != nil {
			list = front(list, attribute{key: "source.ip", princ: directRemoteIP}, s.GetIpBlocks(), s.GetNotIpBlocks())
			list = front(list, attribute{key: "remote.ip", princ: remoteIP}, s.GetRemoteIpBlocks(), s.GetNotRemoteIpBlocks())
			list = front(list, attribute{key: "source.namespace", princ: sourceNamespace}, s.GetNamespaces(), s.GetNotNamespaces())
			list = front(list, attribute{key: "source.trustDomain", princ: sourceTrustDomain}, s.GetTrustDomains(), s.GetNotTrustDomains())
			list = front(list, attribute{key: "source.serviceAccount", princ: sourceServiceAccount(ns)}, s.GetServiceAccounts(), s.GetNotServiceAccounts())
			list = front(list, attribute{key: "request.auth.principal", princAll: requestPrincipalAll}, s.GetRequestPrincipals(), s.GetNotRequestPrincipals())
			list = front(list, attribute{key: "source.principal", princ: sourcePrincipal}, s.GetPrincipals(), s.GetNotPrincipals())
		}
		m.principals = append(m.principals, list)
	}
	if len(r.GetFrom()) == 0 {
		m.principals = append(m.principals, basePrinc)
	}
	for _, to := range r.GetTo() {
		list := append([]attribute(nil), basePerm...)
		if o := to.GetOperation(); o != nil {
			list = front(list, attribute{key: "destination.port", perm: destinationPort}, o.GetPorts(), o.GetNotPorts())
			list = front(list, attribute{key: "paths", perm: urlPath}, o.GetPaths(), o.GetNotPaths())
			list = front(list, attribute{key: "methods", perm: method}, o.GetMethods(), o.GetNotMethods())
			list = front(list, attribute{key: "hosts", perm: host}, o.GetHosts(), o.GetNotHosts())
		}
		m.permissions = append(m.permissions, list)
	}
	if len(r.GetTo()) == 0 {
		m.permissions = append(m.permissions, basePerm)
	}
	return m, nil
}

// whenAttribute resolves a when condition key, reporting whether it is
// about the request (a permission) or its source (a principal).
func whenAttribute(ns, key string) (attribute, bool, error) {
	a := attribute{key: key}
	switch {
	case key == "destination.ip":
		a.perm = destinationIP
		return a, true, nil
	case key == "destination.port":
		a.perm = destinationPort
		return a, true, nil
	case key == "connection.sni":
		a.perm = func(v string) (*rbacv3.Permission, error) {
			return &rbacv3.Permission{Rule: &rbacv3.Permission_RequestedServerName{RequestedServerName: istioString(v, "")}}, nil
		}
		return a, true, nil
	case strings.HasPrefix(key, "experimental.envoy.filters."):
		a.permAll = func(vs []string) (*rbacv3.Permission, error) { return envoyFilterMetadata(key, vs) }
		return a, true, nil
	case key == "source.ip":
		a.princ = directRemoteIP
	case key == "remote.ip":
		a.princ = remoteIP
	case key == "source.namespace":
		a.princ = sourceNamespace
	case key == "source.trustDomain":
		a.princ = sourceTrustDomain
	case key == "source.serviceAccount":
		a.princ = sourceServiceAccount(ns)
	case key == "source.principal":
		a.princ = sourcePrincipal
	case key == "request.auth.principal":
		a.princAll = requestPrincipalAll
	case key == "request.auth.audiences":
		a.princAll = func(vs []string) (*rbacv3.Principal, error) {
			return principalMetadata(jwtClaimMatch([]string{"aud"}, stringOrValues(vs))), nil
		}
	case key == "request.auth.presenter":
		a.princAll = func(vs []string) (*rbacv3.Principal, error) {
			return principalMetadata(jwtClaimMatch([]string{"azp"}, stringOrValues(vs))), nil
		}
	case strings.HasPrefix(key, "request.headers"):
		name, err := bracketName(strings.TrimPrefix(key, "request.headers"))
		if err != nil {
			return a, false, fmt.Errorf("when key %q: %v", key, err)
		}
		a.princ = func(v string) (*rbacv3.Principal, error) {
			return &rbacv3.Principal{Identifier: &rbacv3.Principal_Header{Header: istioHeader(name, v, false)}}, nil
		}
	case strings.HasPrefix(key, "request.auth.claims"):
		claims, err := bracketNames(strings.TrimPrefix(key, "request.auth.claims"))
		if err != nil {
			return a, false, fmt.Errorf("when key %q: %v", key, err)
		}
		a.princAll = func(vs []string) (*rbacv3.Principal, error) {
			return principalMetadata(jwtClaimMatch(claims, stringOrValues(vs))), nil
		}
	default:
		return a, false, fmt.Errorf("unknown attribute %s", key)
	}
	return a, false, nil
}

func directRemoteIP(v string) (*rbacv3.Principal, error) {
	c, err := cidrRange(v)
	if err != nil {
		return nil, err
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: c}}, nil
}

func remoteIP(v string) (*rbacv3.Principal, error) {
	c, err := cidrRange(v)
	if err != nil {
		return nil, err
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_RemoteIp{RemoteIp: c}}, nil
}

// sourceNamespace matches the namespace part of a SPIFFE identity; "*"
// in the value matches anything. The rest of the value is quoted, which
// changes nothing for valid namespace names and keeps any other value
// from producing an invalid regex.
func sourceNamespace(v string) (*rbacv3.Principal, error) {
	parts := strings.Split(v, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return principalAuthenticated(regexMatch(".*/ns/" + strings.Join(parts, ".*") + "/.*")), nil
}

func sourceTrustDomain(v string) (*rbacv3.Principal, error) {
	return principalAuthenticated(trustDomainMatch(v)), nil
}

func sourceServiceAccount(ns string) func(string) (*rbacv3.Principal, error) {
	return func(v string) (*rbacv3.Principal, error) {
		return principalAuthenticated(regexMatch(serviceAccountRegex(ns, v))), nil
	}
}

func sourcePrincipal(v string) (*rbacv3.Principal, error) {
	return principalAuthenticated(istioString(v, spiffePrefix)), nil
}

func requestPrincipalAll(vs []string) (*rbacv3.Principal, error) { return requestPrincipals(vs), nil }

func destinationIP(v string) (*rbacv3.Permission, error) {
	c, err := cidrRange(v)
	if err != nil {
		return nil, err
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationIp{DestinationIp: c}}, nil
}

func destinationPort(v string) (*rbacv3.Permission, error) {
	p, err := portNumber(v)
	if err != nil {
		return nil, err
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: p}}, nil
}

func urlPath(v string) (*rbacv3.Permission, error) {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: pathMatch(v)}}, nil
}

func method(v string) (*rbacv3.Permission, error) {
	return permissionHeader(istioHeader(methodHeaderName, v, false)), nil
}

func host(v string) (*rbacv3.Permission, error) {
	return permissionHeader(istioHeader(authorityHeader, v, true)), nil
}

// envoyFilterMetadata is experimental.envoy.filters.<filter>[<key>]: the
// dynamic metadata key under that filter namespace, each value a string
// or, written "[v]", a list containing v.
func envoyFilterMetadata(key string, vs []string) (*rbacv3.Permission, error) {
	parts := strings.SplitN(strings.TrimSuffix(strings.TrimPrefix(key, "experimental."), "]"), "[", 2)
	if len(parts) != 2 || parts[1] == "" {
		return nil, fmt.Errorf("invalid key: %v", key)
	}
	ms := make([]*matcherv3.ValueMatcher, 0, len(vs))
	for _, v := range vs {
		if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
			ms = append(ms, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_ListMatch{ListMatch: &matcherv3.ListMatcher{
				MatchPattern: &matcherv3.ListMatcher_OneOf{OneOf: stringValue(istioString(strings.Trim(v, "[]"), ""))},
			}}})
			continue
		}
		ms = append(ms, stringValue(istioString(v, "")))
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Metadata{Metadata: &matcherv3.MetadataMatcher{
		Filter: parts[0], Path: metadataPath(parts[1]), Value: orValues(ms),
	}}}, nil
}

// generate builds the rule's RBAC policy. A bad value (an unparsable IP
// or port) drops the whole rule of an ALLOW policy, which can then only
// allow less, and only that value of a DENY or AUDIT policy, which then
// matches more: istiod's checkError, failing closed either way.
func (m *ruleModel) generate(action rbacv3.RBAC_Action) (*rbacv3.Policy, error) {
	check := func(err error) error {
		if action == rbacv3.RBAC_ALLOW {
			return err
		}
		return nil
	}
	p := &rbacv3.Policy{}
	for _, list := range m.permissions {
		var and []*rbacv3.Permission
		for _, a := range list {
			ps, err := a.permissions(check)
			if err != nil {
				return nil, err
			}
			and = append(and, ps...)
		}
		if len(and) == 0 {
			and = append(and, permissionAny())
		}
		p.Permissions = append(p.Permissions, permissionAnd(and))
	}
	for _, list := range m.principals {
		var and []*rbacv3.Principal
		for _, a := range list {
			ps, err := a.principals(check)
			if err != nil {
				return nil, err
			}
			and = append(and, ps...)
		}
		if len(and) == 0 {
			and = append(and, principalAny())
		}
		p.Principals = append(p.Principals, principalAnd(and))
	}
	return p, nil
}

func (a attribute) permissions(check func(error) error) ([]*rbacv3.Permission, error) {
	return attributeNodes(a, check, a.permAll, a.perm, permissionOr, permissionNot)
}

func (a attribute) principals(check func(error) error) ([]*rbacv3.Principal, error) {
	return attributeNodes(a, check, a.princAll, a.princ, principalOr, principalNot)
}

// attributeNodes builds the RBAC nodes of one attribute, for permissions
// and principals alike: an OR over its values, and a NOT over an OR of its
// notValues. all, when set, builds the node for a whole value list at once;
// otherwise one builds a node per value. A value check rejects is left
// out (or fails the rule, as check decides).
func attributeNodes[T comparable](a attribute, check func(error) error, all func([]string) (T, error), one func(string) (T, error), or func([]T) T, not func(T) T) ([]T, error) {
	var zero T
	build := func(vs []string) (T, error) {
		if all != nil {
			n, err := all(vs)
			if err != nil {
				return zero, check(fmt.Errorf("%s: %w", a.key, err))
			}
			return n, nil
		}
		var alt []T
		for _, v := range vs {
			n, err := one(v)
			if err != nil {
				if err := check(fmt.Errorf("%s: %w", a.key, err)); err != nil {
					return zero, err
				}
				continue
			}
			alt = append(alt, n)
		}
		if len(alt) == 0 {
			return zero, nil
		}
		return or(alt), nil
	}
	var out []T
	for i, vs := range [][]string{a.values, a.notValues} {
		if len(vs) == 0 {
			continue
		}
		n, err := build(vs)
		if err != nil {
			return nil, err
		}
		if n == zero {
			continue
		}
		if i == 1 {
			n = not(n)
		}
		out = append(out, n)
	}
	return out, nil
}
