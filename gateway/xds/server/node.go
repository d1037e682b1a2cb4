package server

import (
	"maps"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/structpb"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/waygate/waygate/gateway/istio/translate"
)

// proxyOf reads a node's identity from its metadata the way istiod does
// (pilot/pkg/model NodeMetadata): LABELS, a struct of strings,
// NAMESPACE, SERVICE_ACCOUNT, whose identity its workload certificate
// carries, and NETWORK and CLUSTER_ID, which failover by labels compares.
// Missing fields take the translator's ingress gateway defaults.
func proxyOf(n *corev3.Node) translate.Proxy {
	p := translate.Proxy{ID: n.GetId()}
	md := n.GetMetadata().GetFields()
	if ns := md["NAMESPACE"].GetStringValue(); ns != "" {
		p.Namespace = ns
	}
	p.ServiceAccount = md["SERVICE_ACCOUNT"].GetStringValue()
	p.Network = md["NETWORK"].GetStringValue()
	p.ClusterID = md["CLUSTER_ID"].GetStringValue()
	p.IstioVersion = md["ISTIO_VERSION"].GetStringValue()
	for k, v := range md {
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			if p.Metadata == nil {
				p.Metadata = map[string]string{}
			}
			p.Metadata[k] = s.StringValue
		}
	}
	if pc := md["PROXY_CONFIG"].GetStructValue(); pc != nil {
		p.GatewayTopology = gatewayTopology(pc)
	}
	if l := n.GetLocality(); l.GetRegion() != "" || l.GetZone() != "" || l.GetSubZone() != "" {
		p.Locality = l
	}
	if ls := md["LABELS"].GetStructValue(); ls != nil {
		p.Labels = map[string]string{}
		for k, v := range ls.GetFields() {
			p.Labels[k] = v.GetStringValue()
		}
	}
	return p
}

// identity is a key for proxies that get the same resources.
func identity(p translate.Proxy) string {
	var b strings.Builder
	b.WriteString(p.Namespace)
	b.WriteString("|sa=" + p.ServiceAccount)
	b.WriteString("|network=" + p.Network)
	b.WriteString("|cluster=" + p.ClusterID)
	b.WriteString("|version=" + p.IstioVersion)
	for _, k := range slices.Sorted(maps.Keys(p.Metadata)) {
		b.WriteString("|md:" + k + "=" + p.Metadata[k])
	}
	if p.GatewayTopology != nil {
		b.WriteString("|topology=" + prototext.MarshalOptions{}.Format(p.GatewayTopology))
	}
	if l := p.Locality; l != nil {
		b.WriteString("|locality=" + l.GetRegion() + "/" + l.GetZone() + "/" + l.GetSubZone())
	}
	if p.Labels == nil {
		b.WriteString("|default")
	}
	for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
		b.WriteString("|" + k + "=" + p.Labels[k])
	}
	return b.String()
}

func sameProxy(a, b translate.Proxy) bool {
	return a.ID == b.ID && identity(a) == identity(b)
}

// gatewayTopology reads gatewayTopology from the node's PROXY_CONFIG, the
// proxy's effective ProxyConfig as istio-agent sends it. A ProxyConfig
// without one gives an empty topology: it is the whole effective config,
// so the mesh default does not apply, as in istiod. nil when it does not
// decode.
func gatewayTopology(pc *structpb.Struct) *meshconfig.Topology {
	js, err := protojson.Marshal(pc)
	if err != nil {
		return nil
	}
	var cfg meshconfig.ProxyConfig
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, &cfg); err != nil {
		return nil
	}
	if t := cfg.GetGatewayTopology(); t != nil {
		return t
	}
	return &meshconfig.Topology{}
}
