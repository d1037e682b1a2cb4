package upstream_test

import (
	"net"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/conformance/backend"
)

// dnsCluster is a cluster of type t over host:port.
func dnsCluster(t clusterv3.Cluster_DiscoveryType, host string, port uint32) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 "c",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: t},
		ConnectTimeout:       durationpb.New(time.Second),
		DnsLookupFamily:      clusterv3.Cluster_V4_ONLY,
		DnsRefreshRate:       durationpb.New(50 * time.Millisecond),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "c", Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
				}}},
			}}}},
		}}},
	}
}

func TestDNSClusters(t *testing.T) {
	b := startBackend(t, backend.Options{})
	_, portStr, _ := net.SplitHostPort(b.Addr())
	port, _ := net.LookupPort("tcp", portStr)
	for _, tt := range []struct {
		kind clusterv3.Cluster_DiscoveryType
		want string
	}{
		// STRICT_DNS balances over the addresses the name resolves to.
		{clusterv3.Cluster_STRICT_DNS, net.JoinHostPort("127.0.0.1", portStr)},
		// LOGICAL_DNS keeps the name and resolves it on each connect.
		{clusterv3.Cluster_LOGICAL_DNS, net.JoinHostPort("localhost", portStr)},
	} {
		t.Run(tt.kind.String(), func(t *testing.T) {
			_, cl, _ := build(t, dnsCluster(tt.kind, "localhost", uint32(port)))
			eps := cl.Endpoints()
			if len(eps) != 1 || eps[0].Address != tt.want {
				var got []string
				for _, e := range eps {
					got = append(got, e.Address)
				}
				t.Fatalf("endpoints %v, want [%s]", got, tt.want)
			}
			if _, status, err := send(t.Context(), cl, nil); err != nil || status != 200 {
				t.Fatalf("request: %d %v", status, err)
			}
		})
	}
}
