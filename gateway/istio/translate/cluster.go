package translate

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"istio.io/api/networking/v1alpha3"
)

// blackHoleCluster is istiod's cluster for traffic that must go nowhere.
const blackHoleCluster = "BlackHoleCluster"

// defaultConnectTimeout is MeshConfig connectTimeout's default.
var defaultConnectTimeout = durationpb.New(10 * time.Second)

// buildClusters builds an outbound cluster per service port and one per
// DestinationRule subset of it, as istiod's buildOutboundClusters
// (https://istio.io/latest/docs/reference/config/networking/destination-rule/),
// plus BlackHoleCluster, with a ClusterLoadAssignment for every EDS
// cluster (empty when no endpoint is known) so the set is consistent.
func (t *translator) buildClusters() ([]*clusterv3.Cluster, []*endpointv3.ClusterLoadAssignment) {
	clusters := []*clusterv3.Cluster{{
		Name:                 blackHoleCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       defaultConnectTimeout,
	}}
	var cla []*endpointv3.ClusterLoadAssignment
	seen := map[string]bool{}
	for _, svc := range t.registry.all {
		if seen[svc.hostname] {
			t.warn(svc.source, "", "host %q is also defined by %s; this definition is ignored", svc.hostname, t.registry.byHost[svc.hostname][0].source)
			continue
		}
		seen[svc.hostname] = true
		dr := t.rules.forHost(svc.hostname, t.proxy.Namespace, svc.namespace)
		var rulePolicy *v1alpha3.TrafficPolicy
		var subsets []*v1alpha3.Subset
		if dr != nil {
			rulePolicy = dr.spec.TrafficPolicy
			subsets = t.validSubsets(dr)
		}
		for _, port := range svc.ports {
			c, l := t.buildCluster(svc, port, nil, policyForPort(rulePolicy, nil, port.number), dr)
			clusters = append(clusters, c)
			if l != nil {
				cla = append(cla, l)
			}
			for _, ss := range subsets {
				c, l := t.buildCluster(svc, port, ss, policyForPort(rulePolicy, ss.TrafficPolicy, port.number), dr)
				clusters = append(clusters, c)
				if l != nil {
					cla = append(cla, l)
				}
			}
		}
	}
	return clusters, cla
}

// validSubsets returns the subsets of dr with a name not seen before:
// each becomes a cluster named after it, and names must be unique.
func (t *translator) validSubsets(dr *destinationRule) []*v1alpha3.Subset {
	var out []*v1alpha3.Subset
	seen := map[string]bool{}
	for i, ss := range dr.spec.Subsets {
		if ss.Name == "" || seen[ss.Name] {
			t.warn(dr.key, fmt.Sprintf("spec.subsets[%d].name", i), "subset name %q is empty or repeated; the subset is left out", ss.Name)
			continue
		}
		seen[ss.Name] = true
		out = append(out, ss)
	}
	return out
}

// buildCluster builds the cluster of one service port and optional
// subset, and its ClusterLoadAssignment when it is an EDS cluster.
func (t *translator) buildCluster(svc *service, port servicePort, subset *v1alpha3.Subset,
	policy *v1alpha3.TrafficPolicy, dr *destinationRule,
) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment) {
	subsetName := ""
	var subsetLabels map[string]string
	if subset != nil {
		subsetName, subsetLabels = subset.Name, subset.Labels
	}
	name := clusterName(port.number, subsetName, svc.hostname)
	c := &clusterv3.Cluster{
		Name:           name,
		ConnectTimeout: defaultConnectTimeout,
		CommonLbConfig: &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{}},
		Metadata:       clusterMetadata(svc, subsetName, dr),
	}
	endpoints, labels := t.localityEndpoints(svc, port, subsetLabels)

	var assignment *endpointv3.ClusterLoadAssignment
	switch svc.resolution {
	case resolutionEDS:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsConfigSource(), ServiceName: name}
		assignment = &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: endpoints}
	case resolutionDNS, resolutionDNSRoundRobin:
		typ := clusterv3.Cluster_STRICT_DNS
		if svc.resolution == resolutionDNSRoundRobin {
			typ = clusterv3.Cluster_LOGICAL_DNS
		}
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: typ}
		c.DnsLookupFamily = clusterv3.Cluster_V4_ONLY
		//nolint:staticcheck // istiod still sets the deprecated DNS fields.
		c.DnsRefreshRate = durationpb.New(60 * time.Second)
		//nolint:staticcheck
		c.RespectDnsTtl = true
		c.LoadAssignment = &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: endpoints}
	case resolutionNone:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}
	}

	t.applyTrafficPolicy(c, svc, port, subsetName, policy, dr)
	// After the traffic policy: failover needs to know whether the
	// cluster has outlier detection.
	endpoints = t.applyLocalityLB(c, endpoints, labels, policy.GetLoadBalancer().GetLocalityLbSetting())
	if assignment != nil {
		assignment.Endpoints = endpoints
	}
	if c.LoadAssignment != nil {
		c.LoadAssignment.Endpoints = endpoints
	}
	if c.GetType() == clusterv3.Cluster_ORIGINAL_DST {
		c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	}
	return c, assignment
}

// clusterMetadata is the istio filter_metadata istiod puts on outbound
// clusters: the services behind it, the DestinationRule and the subset.
func clusterMetadata(svc *service, subset string, dr *destinationRule) *corev3.Metadata {
	name := svc.hostname
	fields := map[string]*structpb.Value{
		"services": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{
			structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
				"host":      structpb.NewStringValue(svc.hostname),
				"name":      structpb.NewStringValue(name),
				"namespace": structpb.NewStringValue(svc.namespace),
			}}),
		}}),
	}
	if dr != nil {
		fields["config"] = structpb.NewStringValue(configPath("destination-rule", dr.key.Namespace, dr.key.Name))
	}
	if subset != "" {
		fields["subset"] = structpb.NewStringValue(subset)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": {Fields: fields}}}
}
