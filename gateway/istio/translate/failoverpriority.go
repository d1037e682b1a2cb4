package translate

import (
	"maps"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Failover by labels, a DestinationRule's
// localityLbSetting.failoverPriority
// (https://istio.io/latest/docs/reference/config/networking/destination-rule/#LocalityLoadBalancerSetting):
// an ordered list of labels, each either a label name, compared between
// the gateway's labels and each endpoint's, or name=value, compared
// between value and the endpoint's. An endpoint matching all of them gets
// the first priority; one whose first mismatch is the i-th label (of n)
// gets priority n-i, so that matching more of the leading labels keeps
// it earlier. As in istiod, each locality's group of endpoints is split
// by priority, and the priorities are then numbered from 0 without gaps.
// Both sides' labels carry the topology labels istiod adds (the network,
// the cluster, and the locality's region, zone and subzone), so that
// "topology.istio.io/network" or "topology.kubernetes.io/zone" can be
// listed like any workload label.

// The topology labels istiod adds to proxies' and endpoints' labels
// (istio.io/api/label and the Kubernetes well-known labels).
const (
	labelNetwork = "topology.istio.io/network"
	labelCluster = "topology.istio.io/cluster"
	labelRegion  = "topology.kubernetes.io/region"
	labelZone    = "topology.kubernetes.io/zone"
	labelSubzone = "topology.istio.io/subzone"
)

// defaultClusterID is the cluster id istiod gives its own cluster, and
// the one every endpoint of Waygate's configuration belongs to.
const defaultClusterID = "Kubernetes"

// withTopology returns labels with the topology labels of a workload in
// locality l on network, in cluster; empty values are left out, and the
// input map is not changed.
func withTopology(labels map[string]string, l *corev3.Locality, network, cluster string) map[string]string {
	out := make(map[string]string, len(labels)+5)
	maps.Copy(out, labels)
	for k, v := range map[string]string{
		labelRegion:  l.GetRegion(),
		labelZone:    l.GetZone(),
		labelSubzone: l.GetSubZone(),
		labelNetwork: network,
		labelCluster: cluster,
	} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// proxyLabels are the gateway's labels as failoverPriority compares them.
func (t *translator) proxyLabels() map[string]string {
	cluster := t.proxy.ClusterID
	if cluster == "" {
		cluster = defaultClusterID
	}
	return withTopology(t.proxy.Labels, t.proxy.Locality, t.proxy.Network, cluster)
}

// failoverPriority is an endpoint's priority under the failoverPriority
// list: 0 when every label matches, else the number of labels from the
// first mismatch to the end. As in istiod since 1.31, a network named
// first that differs puts the endpoint after every endpoint of the
// gateway's network, still ordered by the labels after it.
func failoverPriority(rules []string, proxy, endpoint map[string]string) uint32 {
	if len(rules) > 1 && rules[0] == labelNetwork && endpoint[labelNetwork] != proxy[labelNetwork] {
		return uint32(len(rules)) + failoverPriority(rules[1:], proxy, endpoint)
	}
	for i, r := range rules {
		name, want, fixed := strings.Cut(r, "=")
		if !fixed {
			want = proxy[name]
		}
		if endpoint[name] != want {
			return uint32(len(rules) - i)
		}
	}
	return 0
}

// applyFailoverPriority splits each group of eps by the failoverPriority
// of its endpoints (labels holds each endpoint's labels) and numbers the
// priorities from 0 without gaps. Groups keep their locality and order;
// a split group's weight is the sum of its endpoints'.
func applyFailoverPriority(eps []*endpointv3.LocalityLbEndpoints, labels map[*endpointv3.LbEndpoint]map[string]string, rules []string, proxy map[string]string) []*endpointv3.LocalityLbEndpoints {
	var out []*endpointv3.LocalityLbEndpoints
	for _, g := range eps {
		byPriority := map[uint32][]*endpointv3.LbEndpoint{}
		for _, e := range g.GetLbEndpoints() {
			p := failoverPriority(rules, proxy, labels[e])
			byPriority[p] = append(byPriority[p], e)
		}
		for _, p := range slices.Sorted(maps.Keys(byPriority)) {
			part := proto.CloneOf(g)
			part.LbEndpoints = byPriority[p]
			part.Priority = p
			var sum uint32
			for _, e := range part.LbEndpoints {
				sum += e.GetLoadBalancingWeight().GetValue()
			}
			part.LoadBalancingWeight = wrapperspb.UInt32(sum)
			out = append(out, part)
		}
	}
	renumberPriorities(out)
	return out
}

// renumberPriorities maps the groups' priorities onto 0, 1, 2... in
// order, as Envoy requires priorities without gaps.
func renumberPriorities(eps []*endpointv3.LocalityLbEndpoints) {
	used := map[uint32]bool{}
	for _, g := range eps {
		used[g.GetPriority()] = true
	}
	rank := map[uint32]uint32{}
	for i, p := range slices.Sorted(maps.Keys(used)) {
		rank[p] = uint32(i)
	}
	for _, g := range eps {
		g.Priority = rank[g.GetPriority()]
	}
}
