package translate

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/api/networking/v1alpha3"
)

// Locality load balancing, as istiod's ApplyLocalityLoadBalancer
// (https://istio.io/latest/docs/tasks/traffic-management/locality-load-balancing/):
// it needs the gateway's own locality (its node's), and is on unless a
// DestinationRule's localityLbSetting turns it off. With distribute, the
// first rule whose from matches the gateway sets the share of each
// destination locality, and endpoints of other localities get none.
// Otherwise, when the cluster has outlier detection (without it Envoy
// would never leave a priority), endpoints get priorities by how much of
// the gateway's locality they share (all of it, region and zone, region,
// nothing), and failover names the region a region's traffic goes to
// when it fails over; endpoints of other regions come after.
// failoverPriority (failoverpriority.go) orders endpoints by labels
// instead, with locality failover within it when failover is set too.

// applyLocalityLB sets the locality priorities or weights of a
// cluster's endpoints for this gateway, and returns the endpoint groups,
// split when failover is by labels; with weights, the cluster gets
// locality_weighted_lb_config, without which Envoy ignores them.
// setting is the DestinationRule's, nil when it has none; labels holds
// each endpoint's labels, topology labels included.
func (t *translator) applyLocalityLB(c *clusterv3.Cluster, eps []*endpointv3.LocalityLbEndpoints, labels map[*endpointv3.LbEndpoint]map[string]string, setting *v1alpha3.LocalityLoadBalancerSetting) []*endpointv3.LocalityLbEndpoints {
	if len(eps) == 0 {
		return eps
	}
	if setting != nil && setting.GetEnabled() != nil && !setting.GetEnabled().GetValue() {
		return eps
	}
	proxy := t.proxy.Locality
	if dist := setting.GetDistribute(); len(dist) > 0 {
		if proxy != nil && applyLocalityWeights(proxy, eps, dist) {
			localityWeighted(c)
		}
		return eps
	}
	if c.GetOutlierDetection() == nil {
		return eps
	}
	if rules := setting.GetFailoverPriority(); len(rules) > 0 {
		// Failover by labels needs the gateway's labels, not its
		// locality; locality failover applies on top of it only when
		// failover rules are given too, as in istiod.
		eps = applyFailoverPriority(eps, labels, rules, t.proxyLabels())
		if proxy != nil && len(setting.GetFailover()) > 0 {
			applyLocalityFailover(proxy, eps, setting.GetFailover())
		}
		localityWeighted(c)
		return eps
	}
	if proxy != nil {
		applyLocalityFailover(proxy, eps, setting.GetFailover())
		localityWeighted(c)
	}
	return eps
}

// localityWeighted gives c locality_weighted_lb_config, as istiod does
// whenever it applies locality load balancing: without it Envoy ignores
// the groups' weights.
func localityWeighted(c *clusterv3.Cluster) {
	if c.CommonLbConfig == nil {
		c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{}
	}
	c.CommonLbConfig.LocalityConfigSpecifier = &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
		LocalityWeightedLbConfig: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{},
	}
}

// localityPriority is how much of the gateway's locality l shares: 0 all
// of it, 1 region and zone, 2 the region, 3 nothing.
func localityPriority(proxy, l *corev3.Locality) uint32 {
	switch {
	case proxy.GetRegion() != l.GetRegion():
		return 3
	case proxy.GetZone() != l.GetZone():
		return 2
	case proxy.GetSubZone() != l.GetSubZone():
		return 1
	}
	return 0
}

// applyLocalityFailover numbers the endpoint groups' priorities from 0,
// without gaps, by locality (localityPriority); a region with a failover
// rule sends to its target region before any other (priority 4 for the
// others, before renumbering). Priorities the groups already have (from
// failoverPriority) come first: locality orders the groups within each.
func applyLocalityFailover(proxy *corev3.Locality, eps []*endpointv3.LocalityLbEndpoints, failover []*v1alpha3.LocalityLoadBalancerSetting_Failover) {
	for _, g := range eps {
		p := localityPriority(proxy, g.GetLocality())
		if p == 3 {
			for _, f := range failover {
				if f.GetFrom() == proxy.GetRegion() {
					if g.GetLocality().GetRegion() != f.GetTo() {
						p = 4
					}
					break
				}
			}
		}
		g.Priority = g.GetPriority()*5 + p
	}
	renumberPriorities(eps)
}

// applyLocalityWeights applies the first distribute rule whose from
// matches the gateway: each to locality's share is split over the
// endpoint groups it matches by their weights, and the groups no to
// matches lose their endpoints. It reports whether a rule applied.
func applyLocalityWeights(proxy *corev3.Locality, eps []*endpointv3.LocalityLbEndpoints, dist []*v1alpha3.LocalityLoadBalancerSetting_Distribute) bool {
	for _, d := range dist {
		if !localityMatches(proxy, d.GetFrom()) {
			continue
		}
		unmatched := map[int]bool{}
		for i := range eps {
			unmatched[i] = true
		}
		// In a stable order, so each group goes to the first target
		// that matches it whatever the map's order.
		targets := slices.SortedFunc(maps.Keys(d.GetTo()), func(a, b string) int {
			return cmp.Or(cmp.Compare(strings.Count(a, "*"), strings.Count(b, "*")), cmp.Compare(a, b))
		})
		for _, to := range targets {
			share := d.GetTo()[to]
			weights := map[int]uint32{}
			var total uint32
			for i, g := range eps {
				if unmatched[i] && localityMatches(g.GetLocality(), to) {
					delete(unmatched, i)
					w := g.GetLoadBalancingWeight().GetValue()
					if w == 0 {
						w = 1
					}
					weights[i] = w
					total += w
				}
			}
			for i, w := range weights {
				if v := float64(w) * float64(share) / float64(total); v > 0 {
					eps[i].LoadBalancingWeight = wrapperspb.UInt32(uint32(math.Ceil(v)))
				}
			}
		}
		for i := range unmatched {
			eps[i].LbEndpoints = nil
		}
		return true
	}
	return false
}

// localityMatches reports whether l is within the locality rule
// "region/zone/subzone", where "*" matches anything and a missing zone
// or subzone matches any.
func localityMatches(l *corev3.Locality, rule string) bool {
	parts := strings.SplitN(rule, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	region, zone, subzone := parts[0], parts[1], parts[2]
	return (region == "*" || l.GetRegion() == region) &&
		(zone == "*" || zone == "" || l.GetZone() == zone) &&
		(subzone == "*" || subzone == "" || l.GetSubZone() == subzone)
}
