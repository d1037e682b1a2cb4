package admin

import (
	"sync/atomic"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	reviews = "outbound|9080|v1|reviews.default.svc.cluster.local"
	ratings = "outbound|9080||ratings.default.svc.cluster.local"
)

// testSource is a gateway's view built from real xDS protos, as the
// gateway builds it from its snapshot.
type testSource struct {
	ready atomic.Bool
	t     *testing.T
}

func (s *testSource) any(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		s.t.Fatal(err)
	}
	return a
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func (s *testSource) ConfigDump(includeEDS bool) *adminv3.ConfigDump {
	updated := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "outbound_0.0.0.0_8080",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: "http.8080",
			ConfigSource:    &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: s.any(&routerv3.Router{})},
		}},
	}
	listener := &listenerv3.Listener{
		Name:    "0.0.0.0_8080",
		Address: socketAddress("0.0.0.0", 8080),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: s.any(hcm)},
		}}}},
	}
	cluster := func(name string) *adminv3.ClustersConfigDump_DynamicCluster {
		return &adminv3.ClustersConfigDump_DynamicCluster{
			VersionInfo: "v1",
			LastUpdated: updated,
			Cluster: s.any(&clusterv3.Cluster{
				Name:                 name,
				ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
				ConnectTimeout:       durationpb.New(10 * time.Second),
			}),
		}
	}
	dump := &adminv3.ConfigDump{Configs: []*anypb.Any{
		s.any(&adminv3.BootstrapConfigDump{
			Bootstrap:   &bootstrapv3.Bootstrap{Node: &corev3.Node{Id: "router~10.0.0.9~gw.istio-system~istio-system.svc.cluster.local"}},
			LastUpdated: updated,
		}),
		s.any(&adminv3.ListenersConfigDump{
			VersionInfo: "v1",
			DynamicListeners: []*adminv3.ListenersConfigDump_DynamicListener{{
				Name: listener.Name,
				ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{
					VersionInfo: "v1", Listener: s.any(listener), LastUpdated: updated,
				},
			}},
		}),
		s.any(&adminv3.ClustersConfigDump{
			VersionInfo:           "v1",
			DynamicActiveClusters: []*adminv3.ClustersConfigDump_DynamicCluster{cluster(reviews), cluster(ratings)},
		}),
		s.any(&adminv3.RoutesConfigDump{
			DynamicRouteConfigs: []*adminv3.RoutesConfigDump_DynamicRouteConfig{{
				VersionInfo: "v1",
				LastUpdated: updated,
				RouteConfig: s.any(&routev3.RouteConfiguration{
					Name: "http.8080",
					VirtualHosts: []*routev3.VirtualHost{{
						Name:    "bookinfo.example.com:8080",
						Domains: []string{"bookinfo.example.com"},
						Routes: []*routev3.Route{{
							Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
							Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: reviews}}},
						}},
					}},
				}),
			}},
		}),
		s.any(&adminv3.SecretsConfigDump{}),
	}}
	if includeEDS {
		dump.Configs = append(dump.Configs, s.any(&adminv3.EndpointsConfigDump{
			DynamicEndpointConfigs: []*adminv3.EndpointsConfigDump_DynamicEndpointConfig{{
				VersionInfo: "v1",
				EndpointConfig: s.any(&endpointv3.ClusterLoadAssignment{
					ClusterName: reviews,
					Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
						HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress("10.1.0.5", 9080)}},
					}}}},
				}),
			}},
		}))
	}
	return dump
}

func (s *testSource) Clusters() *adminv3.Clusters {
	return &adminv3.Clusters{ClusterStatuses: []*adminv3.ClusterStatus{{
		Name:        reviews,
		AddedViaApi: true,
		CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			Priority:           corev3.RoutingPriority_DEFAULT,
			MaxConnections:     wrapperspb.UInt32(1),
			MaxPendingRequests: wrapperspb.UInt32(1),
		}}},
		EdsServiceName: "outbound|9080|v1|reviews.default.svc.cluster.local",
		HostStatuses: []*adminv3.HostStatus{
			{
				Address: socketAddress("10.1.0.5", 9080),
				Stats: []*adminv3.SimpleMetric{
					{Name: "rq_total", Value: 12, Type: adminv3.SimpleMetric_COUNTER},
					{Name: "cx_active", Value: 1, Type: adminv3.SimpleMetric_GAUGE},
				},
				HealthStatus: &adminv3.HostHealthStatus{EdsHealthStatus: corev3.HealthStatus_HEALTHY},
				Weight:       1,
				Locality:     &corev3.Locality{Region: "eu", Zone: "eu-1"},
				SuccessRate:  &typev3.Percent{Value: 99.5},
			},
			{
				Address:      socketAddress("fd00::7", 9080),
				HealthStatus: &adminv3.HostHealthStatus{FailedOutlierCheck: true, EdsHealthStatus: corev3.HealthStatus_UNHEALTHY},
				Weight:       2,
				Priority:     1,
			},
		},
	}}}
}

func (s *testSource) Listeners() *adminv3.Listeners {
	return &adminv3.Listeners{ListenerStatuses: []*adminv3.ListenerStatus{
		{Name: "0.0.0.0_8080", LocalAddress: socketAddress("0.0.0.0", 8080)},
		{Name: "0.0.0.0_8443", LocalAddress: socketAddress("0.0.0.0", 8443)},
	}}
}

func (s *testSource) Ready() bool { return s.ready.Load() }

func (s *testSource) ServerInfo() *adminv3.ServerInfo {
	return &adminv3.ServerInfo{
		Version:            "waygate/test",
		State:              adminv3.ServerInfo_LIVE,
		UptimeCurrentEpoch: durationpb.New(time.Minute),
		Node:               &corev3.Node{Id: "router~10.0.0.9~gw.istio-system~istio-system.svc.cluster.local"},
	}
}
