package translate

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	meshconfig "istio.io/api/mesh/v1alpha1"
)

// The gateway's network topology, ProxyConfig's gatewayTopology
// (https://istio.io/latest/docs/ops/configuration/traffic-management/network-topologies/),
// as istiod applies it to a gateway:
//   - numTrustedProxies: how many proxies in front of the gateway append
//     to x-forwarded-for, so that the client address is the one they saw
//     (xff_num_trusted_hops);
//   - forwardClientCertDetails: what the gateway does with
//     x-forwarded-client-cert (SANITIZE_SET unless set);
//   - proxyProtocol: the load balancer in front sends the PROXY protocol,
//     so every gateway listener reads it first.

// applyTopology sets the connection manager's fields the gateway's
// topology decides.
func (t *translator) applyTopology(m *hcmv3.HttpConnectionManager) {
	topo := t.proxy.GatewayTopology
	if topo == nil {
		return
	}
	m.XffNumTrustedHops = topo.GetNumTrustedProxies()
	if d, ok := forwardClientCert[topo.GetForwardClientCertDetails()]; ok {
		m.ForwardClientCertDetails = d
	}
	if d := m.GetForwardClientCertDetails(); d != hcmv3.HttpConnectionManager_SANITIZE_SET && d != hcmv3.HttpConnectionManager_APPEND_FORWARD {
		// Only the modes that write the header take details, in istiod.
		m.SetCurrentClientCertDetails = nil
	}
}

// forwardClientCert maps Istio's forwardClientCertDetails to Envoy's;
// UNDEFINED keeps the gateway default, SANITIZE_SET.
var forwardClientCert = map[meshconfig.ForwardClientCertDetails]hcmv3.HttpConnectionManager_ForwardClientCertDetails{
	meshconfig.ForwardClientCertDetails_SANITIZE:            hcmv3.HttpConnectionManager_SANITIZE,
	meshconfig.ForwardClientCertDetails_FORWARD_ONLY:        hcmv3.HttpConnectionManager_FORWARD_ONLY,
	meshconfig.ForwardClientCertDetails_APPEND_FORWARD:      hcmv3.HttpConnectionManager_APPEND_FORWARD,
	meshconfig.ForwardClientCertDetails_SANITIZE_SET:        hcmv3.HttpConnectionManager_SANITIZE_SET,
	meshconfig.ForwardClientCertDetails_ALWAYS_FORWARD_ONLY: hcmv3.HttpConnectionManager_ALWAYS_FORWARD_ONLY,
}

// proxyProtocolFilter is the listener filter a topology with the PROXY
// protocol puts first on every gateway listener; nil otherwise.
func (t *translator) proxyProtocolFilter() *listenerv3.ListenerFilter {
	if t.proxy.GatewayTopology.GetProxyProtocol() == nil {
		return nil
	}
	return &listenerv3.ListenerFilter{
		Name:       "envoy.filters.listener.proxy_protocol",
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&proxyprotocolv3.ProxyProtocol{})},
	}
}
