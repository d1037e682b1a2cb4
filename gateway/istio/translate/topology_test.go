package translate

import (
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	meshconfig "istio.io/api/mesh/v1alpha1"
)

// gatewayTopology reaches the connection manager and the listeners; a
// gateway without one keeps istiod's defaults.
func TestGatewayTopology(t *testing.T) {
	topo := &meshconfig.Topology{
		NumTrustedProxies:        2,
		ForwardClientCertDetails: meshconfig.ForwardClientCertDetails_APPEND_FORWARD,
		ProxyProtocol:            &meshconfig.Topology_ProxyProtocolConfiguration{},
	}
	res := translateEF(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: none}\n", Proxy{GatewayTopology: topo})
	l := efListener(t, res, "0.0.0.0_8080")
	hcm := efHCM(t, l)
	if hcm.GetXffNumTrustedHops() != 2 || hcm.GetForwardClientCertDetails() != hcmv3.HttpConnectionManager_APPEND_FORWARD {
		t.Errorf("xff_num_trusted_hops %d, forward_client_cert_details %v", hcm.GetXffNumTrustedHops(), hcm.GetForwardClientCertDetails())
	}
	if lfs := l.GetListenerFilters(); len(lfs) == 0 || lfs[0].GetName() != "envoy.filters.listener.proxy_protocol" {
		t.Errorf("listener filters %v: want the PROXY protocol first", lfs)
	}

	plain := efHCM(t, efListener(t, translateEF(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: none}\n", Proxy{}), "0.0.0.0_8080"))
	if plain.GetXffNumTrustedHops() != 0 || plain.GetForwardClientCertDetails() != hcmv3.HttpConnectionManager_SANITIZE_SET {
		t.Errorf("without a topology: hops %d, %v", plain.GetXffNumTrustedHops(), plain.GetForwardClientCertDetails())
	}
}
