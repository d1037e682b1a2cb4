package server

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// proxyOf reads NETWORK and CLUSTER_ID, and proxies that differ in them
// get their own resources (failoverPriority compares them).
func TestProxyOfNetwork(t *testing.T) {
	node := func(md map[string]any) *corev3.Node {
		s, err := structpb.NewStruct(md)
		if err != nil {
			t.Fatal(err)
		}
		return &corev3.Node{Id: "n", Metadata: s}
	}
	a := proxyOf(node(map[string]any{"NETWORK": "net-a", "CLUSTER_ID": "east"}))
	if a.Network != "net-a" || a.ClusterID != "east" {
		t.Errorf("network %q, cluster %q; want net-a, east", a.Network, a.ClusterID)
	}
	if a.Metadata["NETWORK"] != "net-a" || a.Metadata["CLUSTER_ID"] != "east" {
		t.Errorf("metadata %v: want the string fields, for EnvoyFilter proxy.metadata", a.Metadata)
	}
	for _, md := range []map[string]any{
		{"NETWORK": "net-b", "CLUSTER_ID": "east"},
		{"NETWORK": "net-a", "CLUSTER_ID": "west"},
		{},
	} {
		if b := proxyOf(node(md)); identity(a) == identity(b) {
			t.Errorf("%v has the identity of %v", md, a)
		}
	}
	if b := proxyOf(node(map[string]any{"NETWORK": "net-a", "CLUSTER_ID": "east"})); !sameProxy(a, b) {
		t.Error("the same node is not the same proxy")
	}
}

// PROXY_CONFIG's gatewayTopology, as istio-agent sends the effective
// ProxyConfig, becomes the proxy's topology.
func TestProxyOfGatewayTopology(t *testing.T) {
	md, err := structpb.NewStruct(map[string]any{"PROXY_CONFIG": map[string]any{
		"gatewayTopology": map[string]any{"numTrustedProxies": 2, "proxyProtocol": map[string]any{}},
		"concurrency":     2,
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := proxyOf(&corev3.Node{Id: "n", Metadata: md})
	if p.GatewayTopology.GetNumTrustedProxies() != 2 || p.GatewayTopology.GetProxyProtocol() == nil {
		t.Errorf("topology %v", p.GatewayTopology)
	}
	if q := proxyOf(&corev3.Node{Id: "n"}); identity(p) == identity(q) {
		t.Error("a topology does not change the proxy's identity")
	}
}
