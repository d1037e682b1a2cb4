// Package translate turns an Istio configuration into the Envoy xDS v3
// resources istiod would send an ingress gateway proxy: listeners per
// Gateway server port, route configurations per RDS name, outbound
// clusters per service port and DestinationRule subset, their endpoints
// and the secrets gateway servers read from files.
//
// The names and shapes follow istiod's gateway generator
// (pilot/pkg/networking/core, see
// https://istio.io/latest/docs/ops/diagnostic-tools/proxy-cmd/), so a
// data plane driven by Waygate and one driven by istiod see the same
// resources: listener "0.0.0.0_8080", route "http.8080", cluster
// "outbound|9080|v1|reviews.default.svc.cluster.local".
package translate

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/waygate/waygate/gateway/istio"
)

// Proxy is the identity of the gateway proxy resources are generated for.
// istiod reads the same fields from the node metadata (LABELS, NAMESPACE).
type Proxy struct {
	// ID is the xDS node id.
	ID string
	// Namespace is the proxy's namespace; "istio-system" when empty.
	Namespace string
	// Locality is the proxy's locality (its node's), for locality load
	// balancing; nil turns it off, as in istiod.
	Locality *corev3.Locality
	// ServiceAccount is the proxy's Kubernetes service account (node
	// metadata SERVICE_ACCOUNT): with Namespace, the identity its
	// workload certificate carries.
	ServiceAccount string
	// TrustDomain is the mesh's trust domain (meshConfig.trustDomain),
	// of the SPIFFE identities upstream Istio mTLS expects; "cluster.local"
	// when empty.
	TrustDomain string
	// Labels select Gateways; the istio-ingressgateway labels when nil.
	// DestinationRules' failoverPriority compares them with endpoints'.
	Labels map[string]string
	// Network is the proxy's network (node metadata NETWORK), empty when
	// it has none; ClusterID is its cluster (CLUSTER_ID), "Kubernetes"
	// when empty. failoverPriority compares them as the labels
	// topology.istio.io/network and topology.istio.io/cluster.
	Network   string
	ClusterID string
	// IstioVersion is the version the proxy reports (node metadata
	// ISTIO_VERSION), which an EnvoyFilter's proxy.proxyVersion matches.
	IstioVersion string
	// Metadata are the node metadata fields holding strings, which an
	// EnvoyFilter's proxy.metadata matches.
	Metadata map[string]string
	// GatewayTopology is the proxy's ProxyConfig gatewayTopology (node
	// metadata PROXY_CONFIG, else meshConfig.defaultConfig): trusted
	// proxies in front of the gateway, client certificate forwarding,
	// the PROXY protocol (topology.go).
	GatewayTopology *meshconfig.Topology
	// DomainSuffix completes short service names; "cluster.local" when empty.
	DomainSuffix string
	// AccessLogFile, when set, gives every HTTP connection manager a
	// file access log in Envoy's default format, as Istio's meshConfig
	// accessLogFile does ("/dev/stdout" for the console).
	AccessLogFile string
	// ExtensionProviders are meshConfig.extensionProviders: the external
	// authorizers CUSTOM AuthorizationPolicies name (authzcustom.go).
	ExtensionProviders []*meshconfig.MeshConfig_ExtensionProvider
}

// Resources are the xDS resources of one proxy, each list sorted by name.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Secrets   []*tlsv3.Secret
	// Extensions are the ECDS resources the listeners' filters name
	// through config_discovery (WasmPlugins, wasmplugin_listener.go).
	Extensions []*corev3.TypedExtensionConfig
}

// Warning is a piece of configuration that was left out or could not be
// honored, with the resource and field it comes from.
type Warning struct {
	Resource istio.Key
	Field    string
	Message  string
}

func (w Warning) String() string {
	if w.Field == "" {
		return fmt.Sprintf("%s: %s", w.Resource, w.Message)
	}
	return fmt.Sprintf("%s: %s: %s", w.Resource, w.Field, w.Message)
}

// withDefaults fills the fields istiod assumes for an ingress gateway.
func (p Proxy) withDefaults() Proxy {
	if p.Namespace == "" {
		p.Namespace = "istio-system"
	}
	if p.Labels == nil {
		p.Labels = map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}
	}
	if p.DomainSuffix == "" {
		p.DomainSuffix = "cluster.local"
	}
	if p.TrustDomain == "" {
		p.TrustDomain = "cluster.local"
	}
	return p
}

// translator holds the state of one Translate call.
type translator struct {
	cfg      *istio.Config
	proxy    Proxy
	registry *registry
	rules    *destinationRules
	vss      []*virtualService
	// secrets are the SDS secrets clusters read from files.
	secrets  []*tlsv3.Secret
	warnings []Warning
	// authz holds the authorization filters once built (authz.go).
	authz *authzChain
	// authn holds the jwt_authn filter and its JWKS clusters once
	// built (requestauthn.go).
	authn *authnChain
	// wasm holds the WasmPlugins' filters once built (wasmplugin.go).
	wasm *wasmChain
}

func (t *translator) warn(key istio.Key, field, format string, args ...any) {
	t.warnings = append(t.warnings, Warning{Resource: key, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Translate generates the resources of proxy p from cfg. It never fails:
// what cannot be translated is left out and reported as a Warning, as
// istiod skips invalid configuration and keeps serving the rest.
func Translate(cfg *istio.Config, p Proxy) (*Resources, []Warning) {
	if cfg == nil {
		cfg = &istio.Config{}
	}
	t := &translator{cfg: cfg, proxy: p.withDefaults()}
	t.rules = t.buildDestinationRules()
	t.registry = t.buildRegistry()
	t.vss = t.allVirtualServices()

	res := &Resources{}
	gw := t.mergeGateways()
	res.Listeners, res.Routes, res.Secrets = t.buildListenersAndRoutes(gw)
	res.Clusters, res.Endpoints = t.buildClusters()
	if gw.autoPassthrough() {
		cs, es := sniDNATClusters(res.Clusters, res.Endpoints)
		res.Clusters, res.Endpoints = append(res.Clusters, cs...), append(res.Endpoints, es...)
	}
	res.Clusters = append(res.Clusters, t.jwksClusters(res.Clusters)...)
	t.applyRateLimits(res)
	t.finishWasm(res)
	t.applyEnvoyFilters(res)
	seen := map[string]bool{}
	for _, s := range res.Secrets {
		seen[s.Name] = true
	}
	for _, s := range t.secrets {
		if !seen[s.Name] {
			seen[s.Name] = true
			res.Secrets = append(res.Secrets, s)
		}
	}
	sortResources(res)
	return res, t.warnings
}
