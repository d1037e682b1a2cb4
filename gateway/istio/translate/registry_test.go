package translate

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/waygate/waygate/gateway/istio"
)

// TestKubernetesServices translates registry services as the Kubernetes
// source delivers them: endpoint ports by port name or target port,
// unready endpoints left out, sidecar workloads marked for Istio mTLS.
func TestKubernetesServices(t *testing.T) {
	cfg := &istio.Config{Services: []*istio.Service{{
		Hostname:  "reviews.default.svc.cluster.local",
		Namespace: "default",
		Name:      "reviews",
		Ports: []istio.ServicePort{
			{Name: "http", Port: 9080, Protocol: "HTTP"},
			{Name: "grpc", Port: 9090, Protocol: "grpc", TargetPort: 19090},
		},
		Endpoints: []istio.Endpoint{
			{Address: "10.0.0.1", Ports: map[string]uint32{"http": 19080}, Labels: map[string]string{"version": "v1"}, Ready: true},
			{Address: "10.0.0.2", Labels: map[string]string{"security.istio.io/tlsMode": "istio"}, Ready: true, Locality: "r/z"},
			{Address: "10.0.0.3", Ready: false},
		},
	}}}
	res, warnings := Translate(cfg, Proxy{})
	if len(warnings) != 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range res.Clusters {
		clusters[c.Name] = c
	}
	cla := map[string]*endpointv3.ClusterLoadAssignment{}
	for _, e := range res.Endpoints {
		cla[e.ClusterName] = e
	}

	for _, tc := range []struct {
		cluster string
		want    map[string]uint32 // address → port
		tlsMode map[string]bool
	}{
		{"outbound|9080||reviews.default.svc.cluster.local", map[string]uint32{"10.0.0.1": 19080, "10.0.0.2": 9080}, map[string]bool{"10.0.0.2": true}},
		{"outbound|9090||reviews.default.svc.cluster.local", map[string]uint32{"10.0.0.1": 19090, "10.0.0.2": 19090}, map[string]bool{"10.0.0.2": true}},
	} {
		t.Run(tc.cluster, func(t *testing.T) {
			c := clusters[tc.cluster]
			if c == nil || c.GetType() != clusterv3.Cluster_EDS {
				t.Fatalf("cluster %s missing or not EDS: %v", tc.cluster, c)
			}
			if len(c.TransportSocketMatches) != 2 {
				t.Errorf("cluster has %d transport socket matches, want istiod's auto mTLS pair", len(c.TransportSocketMatches))
			}
			got := map[string]uint32{}
			for _, l := range cla[tc.cluster].GetEndpoints() {
				for _, e := range l.LbEndpoints {
					sa := e.GetEndpoint().GetAddress().GetSocketAddress()
					got[sa.GetAddress()] = sa.GetPortValue()
					mode := e.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"].GetFields()["tlsMode"].GetStringValue()
					if (mode == "istio") != tc.tlsMode[sa.GetAddress()] {
						t.Errorf("%s tlsMode = %q", sa.GetAddress(), mode)
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("endpoints = %v, want %v", got, tc.want)
			}
			for a, p := range tc.want {
				if got[a] != p {
					t.Errorf("%s port = %d, want %d", a, got[a], p)
				}
			}
		})
	}
	if opts := clusters["outbound|9090||reviews.default.svc.cluster.local"].GetTypedExtensionProtocolOptions(); opts[httpProtocolOptionsKey] == nil {
		t.Error("gRPC port cluster is not HTTP/2")
	}
}
