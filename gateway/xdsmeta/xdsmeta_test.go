package xdsmeta

import (
	"context"
	"net/http"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// md is filter_metadata {ns: {k: v}}.
func md(ns, k, v string) *corev3.Metadata {
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		ns: {Fields: map[string]*structpb.Value{k: structpb.NewStringValue(v)}},
	}}
}

func TestLookups(t *testing.T) {
	withMD := hcmtest.Prefix("/md", "reviews")
	withMD.Metadata = md("istio", "config", "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews")
	tbl, err := router.Compile(&routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
		Name: "bookinfo", Domains: []string{"*"}, Metadata: md("team", "owner", "books"),
		Routes: []*routev3.Route{withMD, hcmtest.Prefix("/plain", "ratings"), hcmtest.Prefix("/gone", "missing")},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	reviews := hcmtest.StaticCluster("reviews", "127.0.0.1:9080")
	reviews.Metadata = md("istio", "services", "reviews.default.svc.cluster.local")
	clusters, err := upstream.NewManager().Build(map[string]*clusterv3.Cluster{
		"reviews": reviews,
		"ratings": hcmtest.StaticCluster("ratings", "127.0.0.1:9081"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := upstream.WithSet(context.Background(), &hcmtest.View{Clusters: clusters})
	exchange := func(path string) *filters.Exchange {
		x := &filters.Exchange{Context: ctx, Request: filters.Request{Method: "GET", Path: path, Authority: "books", Header: http.Header{}}}
		x.Downstream = filters.Connection{Listener: "0.0.0.0_8080", ListenerMetadata: md("l", "k", "v")}
		if rt := tbl.Match(&x.Request, &x.Downstream); rt != nil {
			x.Route = rt
		}
		return x
	}
	picked := exchange("/plain")
	picked.Info.UpstreamCluster = "reviews"
	picked.Info.UpstreamHost, picked.Info.UpstreamHostMetadata = "127.0.0.1:9080", md("envoy.lb", "canary", "true")
	noContext := exchange("/md")
	noContext.Context = nil

	for _, c := range []struct {
		name   string
		lookup func(*filters.Exchange) (*corev3.Metadata, bool)
		x      *filters.Exchange
		want   *corev3.Metadata
		ok     bool
	}{
		{"route with metadata", Route, exchange("/md"), withMD.Metadata, true},
		{"route without", Route, exchange("/plain"), nil, true},
		{"no route", Route, exchange("/nowhere"), nil, false},
		{"virtual host", VirtualHost, exchange("/plain"), md("team", "owner", "books"), true},
		{"virtual host, no route", VirtualHost, exchange("/nowhere"), nil, false},
		{"the route's cluster", Cluster, exchange("/md"), reviews.Metadata, true},
		{"a cluster without", Cluster, exchange("/plain"), nil, true},
		{"the cluster the router sent to", Cluster, picked, reviews.Metadata, true},
		{"a cluster the snapshot lacks", Cluster, exchange("/gone"), nil, false},
		{"no route, no cluster", Cluster, exchange("/nowhere"), nil, false},
		{"no cluster set", Cluster, noContext, nil, false},
		{"the picked host", UpstreamHost, picked, md("envoy.lb", "canary", "true"), true},
		{"no host picked", UpstreamHost, exchange("/md"), nil, false},
		{"listener", Listener, exchange("/md"), md("l", "k", "v"), true},
		{"no listener", Listener, &filters.Exchange{}, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := c.lookup(c.x)
			if ok != c.ok || !proto.Equal(got, c.want) {
				t.Errorf("got %v, %v; want %v, %v", got, ok, c.want, c.ok)
			}
		})
	}
}
