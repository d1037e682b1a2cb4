package translate

import (
	"cmp"
	"slices"

	"istio.io/api/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

// destinationRule is a DestinationRule with its host resolved to a FQDN.
type destinationRule struct {
	key  istio.Key
	host string
	spec *v1alpha3.DestinationRule
}

type destinationRules struct {
	rules []*destinationRule
}

func (t *translator) buildDestinationRules() *destinationRules {
	d := &destinationRules{}
	for _, dr := range t.cfg.DestinationRules {
		if dr == nil || !exportedTo(dr.Spec.ExportTo, dr.Namespace, t.proxy.Namespace) {
			continue
		}
		d.rules = append(d.rules, &destinationRule{
			key:  istio.Key{Kind: "DestinationRule", Namespace: dr.Namespace, Name: dr.Name},
			host: t.fqdn(dr.Spec.Host, dr.Namespace),
			spec: &dr.Spec,
		})
	}
	// Oldest first, as istiod orders configuration; name and namespace
	// break ties so the choice is stable.
	slices.SortStableFunc(d.rules, func(a, b *destinationRule) int {
		return cmp.Or(cmp.Compare(a.key.Name, b.key.Name), cmp.Compare(a.key.Namespace, b.key.Namespace))
	})
	return d
}

// forHost returns the DestinationRule that applies to hostname for a proxy
// in proxyNamespace, following istiod's lookup
// (https://istio.io/latest/docs/ops/best-practices/traffic-management/#cross-namespace-configuration):
// an exact host before a wildcard, the most specific wildcard first, then
// a rule in the proxy's namespace, then the service's namespace, then any.
func (d *destinationRules) forHost(hostname, proxyNamespace, serviceNamespace string) *destinationRule {
	var best *destinationRule
	bestRank := [2]int{}
	for _, r := range d.rules {
		if !hostSubsetOf(hostname, r.host) {
			continue
		}
		specificity := len(r.host)
		if r.host == hostname {
			specificity = 1 << 20
		}
		nsRank := 0
		switch r.key.Namespace {
		case proxyNamespace:
			nsRank = 2
		case serviceNamespace:
			nsRank = 1
		}
		rank := [2]int{specificity, nsRank}
		if best == nil || rank[0] > bestRank[0] || (rank[0] == bestRank[0] && rank[1] > bestRank[1]) {
			best, bestRank = r, rank
		}
	}
	return best
}

// subset returns the named subset of r, or nil.
func (r *destinationRule) subset(name string) *v1alpha3.Subset {
	if r == nil {
		return nil
	}
	for _, s := range r.spec.Subsets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// policyForPort returns the traffic policy of a cluster for service port
// port and an optional subset, merged as istiod's MergeTrafficPolicy does
// (https://istio.io/latest/docs/reference/config/networking/destination-rule/#TrafficPolicy):
// the rule's port-level settings replace its top-level settings for that
// port; a subset's settings replace the rule's, component by component,
// and the subset's own port-level settings replace those. A retry budget
// and the PROXY protocol have no port-level setting: the subset's, else
// the rule's, applies.
func policyForPort(rule *v1alpha3.TrafficPolicy, subset *v1alpha3.TrafficPolicy, port uint32) *v1alpha3.TrafficPolicy {
	merged := applyPortLevel(rule, port)
	if subset == nil {
		return merged
	}
	out := &v1alpha3.TrafficPolicy{}
	if merged != nil {
		out.ConnectionPool = merged.ConnectionPool
		out.OutlierDetection = merged.OutlierDetection
		out.LoadBalancer = merged.LoadBalancer
		out.Tls = merged.Tls
		out.RetryBudget = merged.RetryBudget
		out.ProxyProtocol = merged.ProxyProtocol
	}
	if subset.ConnectionPool != nil {
		out.ConnectionPool = subset.ConnectionPool
	}
	if subset.OutlierDetection != nil {
		out.OutlierDetection = subset.OutlierDetection
	}
	if subset.LoadBalancer != nil {
		out.LoadBalancer = subset.LoadBalancer
	}
	if subset.Tls != nil {
		out.Tls = subset.Tls
	}
	if subset.RetryBudget != nil {
		out.RetryBudget = subset.RetryBudget
	}
	if subset.ProxyProtocol != nil {
		out.ProxyProtocol = subset.ProxyProtocol
	}
	for _, p := range subset.PortLevelSettings {
		if p.GetPort().GetNumber() == port {
			out.ConnectionPool = p.ConnectionPool
			out.OutlierDetection = p.OutlierDetection
			out.LoadBalancer = p.LoadBalancer
			out.Tls = p.Tls
			break
		}
	}
	return out
}

// applyPortLevel returns policy with its port-level settings for port
// applied; port-level settings do not inherit from the top level.
func applyPortLevel(policy *v1alpha3.TrafficPolicy, port uint32) *v1alpha3.TrafficPolicy {
	if policy == nil {
		return nil
	}
	for _, p := range policy.PortLevelSettings {
		if p.GetPort().GetNumber() == port {
			return &v1alpha3.TrafficPolicy{
				ConnectionPool:   p.ConnectionPool,
				OutlierDetection: p.OutlierDetection,
				LoadBalancer:     p.LoadBalancer,
				Tls:              p.Tls,
				// A retry budget and the PROXY protocol have no
				// port-level setting.
				RetryBudget:   policy.RetryBudget,
				ProxyProtocol: policy.ProxyProtocol,
			}
		}
	}
	return &v1alpha3.TrafficPolicy{
		ConnectionPool:   policy.ConnectionPool,
		OutlierDetection: policy.OutlierDetection,
		LoadBalancer:     policy.LoadBalancer,
		Tls:              policy.Tls,
		RetryBudget:      policy.RetryBudget,
		ProxyProtocol:    policy.ProxyProtocol,
	}
}
