package server

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/gateway/istio"
)

const (
	listenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	routeType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	clusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	endpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// config is a Gateway for the ingress gateway labels on port, and one
// for other labels on 7070, with a VirtualService and its service.
func config(t *testing.T, port string) *istio.Config {
	t.Helper()
	yaml := `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ` + port + `, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: internal, namespace: default}
spec:
  selector: {istio: internal}
  servers:
  - port: {number: 7070, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ["*"]
  gateways: [ingress, internal]
  http:
  - route:
    - destination: {host: web, port: {number: 80}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`
	cfg, findings := istio.ParseDocuments("test.yaml", []byte(yaml))
	if istio.HasErrors(findings) {
		t.Fatal(findings)
	}
	return cfg
}

// start serves s on a loopback port and returns a client connection.
func start(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn
}

func nodeWith(t *testing.T, id string, labels map[string]any) *corev3.Node {
	t.Helper()
	md, err := structpb.NewStruct(map[string]any{"LABELS": labels, "NAMESPACE": "istio-system"})
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.Node{Id: id, Metadata: md}
}

func listenerNames(t *testing.T, resources []*anypb.Any) []string {
	t.Helper()
	var names []string
	for _, r := range resources {
		l := &listenerv3.Listener{}
		if err := r.UnmarshalTo(l); err != nil {
			t.Fatal(err)
		}
		names = append(names, l.Name)
	}
	slices.Sort(names)
	return names
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSotW subscribes to listeners over a state-of-the-world ADS stream:
// each proxy gets the listener of the Gateway its labels select, and a
// new version when the configuration changes.
func TestSotW(t *testing.T) {
	s := New(nil)
	s.Update(config(t, "8080"))
	conn := start(t, s)
	ctx := testContext(t)
	ads := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn)

	ingress, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(stream discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient, req *discoverygrpc.DiscoveryRequest) {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(stream discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient) *discoverygrpc.DiscoveryResponse {
		t.Helper()
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	send(ingress, &discoverygrpc.DiscoveryRequest{
		Node:    nodeWith(t, "ingress-1", map[string]any{"istio": "ingressgateway"}),
		TypeUrl: listenerType,
	})
	first := recv(ingress)
	if got := listenerNames(t, first.Resources); !slices.Equal(got, []string{"0.0.0.0_8080"}) {
		t.Fatalf("ingress listeners = %v, want [0.0.0.0_8080]", got)
	}
	if first.VersionInfo == "" {
		t.Fatal("response has no version")
	}
	// ACK, then ask for the route the listener names and the clusters.
	send(ingress, &discoverygrpc.DiscoveryRequest{TypeUrl: listenerType, VersionInfo: first.VersionInfo, ResponseNonce: first.Nonce})
	send(ingress, &discoverygrpc.DiscoveryRequest{TypeUrl: routeType, ResourceNames: []string{"http.8080"}})
	if r := recv(ingress); r.TypeUrl != routeType || len(r.Resources) != 1 {
		t.Fatalf("route response: type %s, %d resources", r.TypeUrl, len(r.Resources))
	} else {
		send(ingress, &discoverygrpc.DiscoveryRequest{TypeUrl: routeType, ResourceNames: []string{"http.8080"}, VersionInfo: r.VersionInfo, ResponseNonce: r.Nonce})
	}

	// Another proxy, other labels: its own listener.
	internal, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send(internal, &discoverygrpc.DiscoveryRequest{
		Node:    nodeWith(t, "internal-1", map[string]any{"istio": "internal"}),
		TypeUrl: listenerType,
	})
	if got := listenerNames(t, recv(internal).Resources); !slices.Equal(got, []string{"0.0.0.0_7070"}) {
		t.Fatalf("internal listeners = %v, want [0.0.0.0_7070]", got)
	}

	s.Update(config(t, "9090"))
	next := recv(ingress)
	if next.TypeUrl != listenerType {
		t.Fatalf("after Update got %s first, want listeners", next.TypeUrl)
	}
	if next.VersionInfo == first.VersionInfo {
		t.Fatalf("version %s did not change after Update", next.VersionInfo)
	}
	if got := listenerNames(t, next.Resources); !slices.Equal(got, []string{"0.0.0.0_9090"}) {
		t.Fatalf("ingress listeners after Update = %v, want [0.0.0.0_9090]", got)
	}
}

// TestDelta subscribes to listeners and clusters over a delta ADS
// stream: the first response carries the proxy's resources, and an
// Update sends the new listener and removes the old one.
func TestDelta(t *testing.T) {
	s := New(nil)
	s.Update(config(t, "8080"))
	conn := start(t, s)
	ctx := testContext(t)
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoverygrpc.DeltaDiscoveryRequest{
		Node:    nodeWith(t, "ingress-delta", map[string]any{"istio": "ingressgateway"}),
		TypeUrl: listenerType,
	}); err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range first.Resources {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"0.0.0.0_8080"}) || first.SystemVersionInfo == "" {
		t.Fatalf("first delta: resources %v, version %q; want [0.0.0.0_8080] and a version", names, first.SystemVersionInfo)
	}
	if err := stream.Send(&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: listenerType, ResponseNonce: first.Nonce}); err != nil {
		t.Fatal(err)
	}

	s.Update(config(t, "9090"))
	next, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, r := range next.Resources {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"0.0.0.0_9090"}) || !slices.Equal(next.RemovedResources, []string{"0.0.0.0_8080"}) {
		t.Fatalf("delta after Update: resources %v removed %v; want [0.0.0.0_9090] removed [0.0.0.0_8080]", names, next.RemovedResources)
	}
	if next.SystemVersionInfo == first.SystemVersionInfo {
		t.Fatalf("version %s did not change after Update", next.SystemVersionInfo)
	}
}

// TestSnapshotConsistent checks that every snapshot the server builds
// names only routes and endpoints it holds, and that an unchanged
// configuration keeps its versions.
func TestSnapshotConsistent(t *testing.T) {
	cfg := config(t, "8080")
	p := proxyOf(nodeWith(t, "n", map[string]any{"istio": "ingressgateway"}))
	a, _, err := snapshotFor(cfg, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := snapshotFor(config(t, "8080"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{listenerType, routeType, clusterType, endpointType} {
		if a.GetVersion(typ) == "" || a.GetVersion(typ) != b.GetVersion(typ) {
			t.Errorf("%s versions %q and %q; want equal and set", typ, a.GetVersion(typ), b.GetVersion(typ))
		}
	}
	c, _, err := snapshotFor(config(t, "9090"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.GetVersion(listenerType) == a.GetVersion(listenerType) {
		t.Error("listener version did not change with the listener")
	}
	if c.GetVersion(clusterType) != a.GetVersion(clusterType) {
		t.Error("cluster version changed though clusters did not")
	}
}

func TestProxyOf(t *testing.T) {
	for _, tc := range []struct {
		name      string
		node      *corev3.Node
		namespace string
		labels    map[string]string
	}{
		{"no metadata", &corev3.Node{Id: "a"}, "", nil},
		{"labels and namespace", nodeWith(t, "b", map[string]any{"app": "gw"}), "istio-system", map[string]string{"app": "gw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := proxyOf(tc.node)
			if p.ID != tc.node.Id || p.Namespace != tc.namespace || len(p.Labels) != len(tc.labels) {
				t.Fatalf("proxyOf = %+v", p)
			}
			for k, v := range tc.labels {
				if p.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, p.Labels[k], v)
				}
			}
		})
	}
}
