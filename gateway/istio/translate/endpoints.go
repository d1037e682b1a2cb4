package translate

import (
	"cmp"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// tlsModeLabel is the workload label the sidecar injector sets; istiod
// copies it into endpoint metadata so auto mTLS picks Istio mTLS only
// for workloads that have a proxy to terminate it.
const tlsModeLabel = "security.istio.io/tlsMode"

// localityEndpoints groups the endpoints of a service port (restricted to
// a subset's labels) by locality, as istiod's EDS: each endpoint HEALTHY
// with its weight, and the envoy.transport_socket_match metadata
// {tlsMode: istio} when the workload is in the mesh. It also returns
// each endpoint's labels with the topology labels istiod adds, for
// failover by labels.
func (t *translator) localityEndpoints(svc *service, port servicePort, subsetLabels map[string]string) ([]*endpointv3.LocalityLbEndpoints, map[*endpointv3.LbEndpoint]map[string]string) {
	groups := map[string]*endpointv3.LocalityLbEndpoints{}
	labels := map[*endpointv3.LbEndpoint]map[string]string{}
	var order []string
	for _, e := range svc.endpoints {
		if !labelsSubset(subsetLabels, e.labels) {
			continue
		}
		g := groups[e.locality]
		if g == nil {
			g = &endpointv3.LocalityLbEndpoints{Locality: parseLocality(e.locality)}
			groups[e.locality] = g
			order = append(order, e.locality)
		}
		weight := e.weight
		if weight == 0 {
			weight = 1
		}
		lb := &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address:       e.address,
					PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: e.endpointPort(port)},
				}}},
			}},
			HealthStatus:        corev3.HealthStatus_HEALTHY,
			LoadBalancingWeight: wrapperspb.UInt32(weight),
		}
		if e.labels[tlsModeLabel] == "istio" {
			lb.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
				"envoy.transport_socket_match": {Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}},
			}}
		}
		g.LbEndpoints = append(g.LbEndpoints, lb)
		labels[lb] = withTopology(e.labels, g.Locality, e.network, defaultClusterID)
	}
	slices.Sort(order)
	out := make([]*endpointv3.LocalityLbEndpoints, 0, len(order))
	for _, l := range order {
		g := groups[l]
		var sum uint32
		for _, e := range g.LbEndpoints {
			sum += e.LoadBalancingWeight.GetValue()
		}
		g.LoadBalancingWeight = wrapperspb.UInt32(sum)
		slices.SortStableFunc(g.LbEndpoints, func(a, b *endpointv3.LbEndpoint) int {
			aa, ba := a.GetEndpoint().GetAddress().GetSocketAddress(), b.GetEndpoint().GetAddress().GetSocketAddress()
			return cmp.Or(cmp.Compare(aa.GetAddress(), ba.GetAddress()), cmp.Compare(aa.GetPortValue(), ba.GetPortValue()))
		})
		out = append(out, g)
	}
	return out, labels
}

// parseLocality splits "region/zone/subzone"; nil for no locality.
func parseLocality(s string) *corev3.Locality {
	if s == "" {
		return nil
	}
	parts := strings.SplitN(s, "/", 3)
	l := &corev3.Locality{Region: parts[0]}
	if len(parts) > 1 {
		l.Zone = parts[1]
	}
	if len(parts) > 2 {
		l.SubZone = parts[2]
	}
	return l
}
