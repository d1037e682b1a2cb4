package accesslog

import (
	"context"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

func metadataOf(t *testing.T, ns string, fields map[string]any) *corev3.Metadata {
	t.Helper()
	st, err := structpb.NewStruct(fields)
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{ns: st}}
}

// TestStaticMetadataOperators logs the metadata of the resources a
// request went through, as istiod sets it on routes and clusters.
func TestStaticMetadataOperators(t *testing.T) {
	rt := hcmtest.Prefix("/", "outbound|80||locations.default.svc.cluster.local")
	rt.Metadata = metadataOf(t, "istio", map[string]any{"config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/locations"})
	tbl, err := router.Compile(&routev3.RouteConfiguration{Name: "http.8443", VirtualHosts: []*routev3.VirtualHost{{
		Name: "locations:443", Domains: []string{"*"}, Routes: []*routev3.Route{rt},
		Metadata: metadataOf(t, "team", map[string]any{"owner": "maps"}),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	cl := hcmtest.StaticCluster("outbound|80||locations.default.svc.cluster.local", "10.0.2.1:80")
	cl.Metadata = metadataOf(t, "istio", map[string]any{
		"services": []any{map[string]any{"host": "locations.default.svc.cluster.local", "name": "locations", "namespace": "default"}},
		"weight":   3,
	})
	clusters, err := upstream.NewManager().Build(map[string]*clusterv3.Cluster{cl.GetName(): cl}, nil)
	if err != nil {
		t.Fatal(err)
	}

	x := exchange()
	x.Context = upstream.WithSet(context.Background(), &hcmtest.View{Clusters: clusters})
	x.Route = tbl.Match(&x.Request, &x.Downstream)
	x.Info.UpstreamHostMetadata = metadataOf(t, "envoy.lb", map[string]any{"version": "v2", "canary": true})
	x.Downstream.Listener = "0.0.0.0_8443"
	x.Downstream.ListenerMetadata = metadataOf(t, "team", map[string]any{"owner": "edge"})

	for _, c := range []struct{ format, want string }{
		{"%METADATA(ROUTE:istio:config)%", "/apis/networking.istio.io/v1/namespaces/default/virtual-service/locations"},
		{"%METADATA(VIRTUAL_HOST:team:owner)% %METADATA(LISTENER:team:owner)%", "maps edge"},
		{"%METADATA(CLUSTER:istio:services)%", `[{"host":"locations.default.svc.cluster.local","name":"locations","namespace":"default"}]`},
		{"%CLUSTER_METADATA(istio:weight)%", "3"},
		{"%METADATA(UPSTREAM_HOST:envoy.lb)%", `{"canary":true,"version":"v2"}`},
		{"%UPSTREAM_METADATA(envoy.lb:version)%", "v2"},
		{"%METADATA(DYNAMIC:istio.mixer:label)%", "blue"},
		{"%METADATA(ROUTE:istio:config):9%", "/apis/net"},
		{"%METADATA(ROUTE:other)% %METADATA(ROUTE:istio:nope)% %CLUSTER_METADATA(istio:services:host)%", "- - -"},
	} {
		f, err := Compile(c.format)
		if err != nil {
			t.Fatalf("%s: %v", c.format, err)
		}
		if got := string(f.Append(nil, x, end)); got != c.want {
			t.Errorf("%s = %q, want %q", c.format, got, c.want)
		}
	}

	// Before a host is picked, and for a request no route matched,
	// there is nothing to print.
	x = exchange()
	f, err := Compile("%UPSTREAM_METADATA(envoy.lb:version)% %METADATA(ROUTE:istio)% %CLUSTER_METADATA(istio)% %METADATA(LISTENER:team)%")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(f.Append(nil, x, end)), "- - - -"; got != want {
		t.Errorf("nothing known: %q, want %q", got, want)
	}
}

func TestStaticMetadataErrors(t *testing.T) {
	for _, c := range []struct{ format, want string }{
		{"%METADATA(SECRET:a)%", "TYPE one of DYNAMIC, CLUSTER, ROUTE"},
		{"%METADATA(ROUTE)%", "want (TYPE:NAMESPACE"},
		{"%METADATA()%", "want (TYPE:NAMESPACE"},
		{"%METADATA(DYNAMIC)%", "NAMESPACE"},
		{"%CLUSTER_METADATA()%", "%CLUSTER_METADATA%: want (NAMESPACE"},
		{"%UPSTREAM_METADATA%", "%UPSTREAM_METADATA%: want (NAMESPACE"},
	} {
		if _, err := Compile(c.format); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%q) error = %v, want one containing %q", c.format, err, c.want)
		}
	}
}
