package hcm

import "github.com/waygate/waygate/filters"

// Istio puts filters in every gateway chain that serve its sidecar
// telemetry and peer discovery, not a gateway's traffic. They are
// accepted as no-ops (logged once per listener) so that istiod's config
// is never refused for them; see ../../../shared/xds-samples/README.md.
func init() {
	for typeURL, why := range map[string]string{
		"type.googleapis.com/io.istio.http.peer_metadata.Config":                        "Istio peer metadata exchange is sidecar telemetry",
		"type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig": "istio.alpn only rewrites ALPN for Istio mTLS upstreams",
		"type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig":  "gRPC per-method stats are not collected yet",
		"type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange":        "Istio TCP metadata exchange is sidecar telemetry",
		"type.googleapis.com/stats.PluginConfig":                                        "Istio stats plugin: Waygate exports its own stats",
	} {
		filters.RegisterNoop(typeURL, why)
	}
}
