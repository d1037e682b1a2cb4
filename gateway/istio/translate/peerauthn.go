package translate

import (
	"sort"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	security "istio.io/client-go/pkg/apis/security/v1"

	"github.com/waygate/waygate/gateway/istio"
)

// PeerAuthentication at the gateway.
//
// istiod builds a gateway's listeners from its Gateway servers alone:
// PeerAuthentication shapes a sidecar's inbound listeners, never a
// gateway's (https://istio.io/latest/docs/reference/config/security/peer_authentication/,
// and istio/istio#23284). A server with tls.mode ISTIO_MUTUAL
// (https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings-TLSmode)
// is how a gateway takes Istio mTLS: it presents the workload certificate
// (SDS "default") and requires a client certificate from the mesh root
// ("ROOTCA").
//
// Such a port faces the mesh, as a sidecar's inbound port does, so
// Waygate applies to it the PeerAuthentication that selects the gateway
// workload, with a sidecar's meaning
// (https://istio.io/latest/docs/concepts/security/#peer-authentication):
//
//   - STRICT, or no policy: istiod's listener, a TLS filter chain that
//     requires a client certificate. Plain text finds no filter chain
//     and the connection is closed.
//   - PERMISSIVE: that chain matches transport_protocol "tls", and a
//     second chain takes "raw_buffer", plain text, with the same
//     connection manager: a client may come with or without mTLS. A
//     port has one plain chain, whichever server comes first.
//   - DISABLE: the plain chain alone.
//
// Servers with other TLS modes, user-facing ones, are left alone, as
// istiod leaves them. The policy is found as for a sidecar: a policy
// with a selector matching the gateway's labels in its namespace (and
// its portLevelMtls for the server's port, the port the gateway
// listens on), else the namespace's policy without selector, else the
// mesh-wide one in the root namespace; UNSET inherits from the next.
// Note the gateway runs in istio-system: a namespace-wide policy in
// "default" does not reach it.

// peerMTLSMode is the mTLS mode PeerAuthentication sets for the proxy's
// port, with the policy that set it (nil when none did: UNSET).
func (t *translator) peerMTLSMode(port uint32) (securityv1beta1.PeerAuthentication_MutualTLS_Mode, *security.PeerAuthentication) {
	var workload, namespace, mesh []*security.PeerAuthentication
	for _, p := range t.cfg.PeerAuthentications {
		sel := p.Spec.GetSelector().GetMatchLabels()
		switch {
		case p.Namespace == t.proxy.Namespace && len(sel) > 0:
			if labelsMatch(sel, t.proxy.Labels) {
				workload = append(workload, p)
			}
		case p.Namespace == t.proxy.Namespace:
			namespace = append(namespace, p)
		case p.Namespace == rootNamespace && len(sel) == 0:
			mesh = append(mesh, p)
		}
	}
	for _, level := range [][]*security.PeerAuthentication{workload, namespace, mesh} {
		// Istio takes the oldest of several; a directory has no age,
		// so the first by name decides, the same on every push.
		sort.Slice(level, func(i, j int) bool { return level[i].Name < level[j].Name })
		for _, p := range level {
			if m := p.Spec.GetPortLevelMtls()[port].GetMode(); m != securityv1beta1.PeerAuthentication_MutualTLS_UNSET {
				return m, p
			}
			if m := p.Spec.GetMtls().GetMode(); m != securityv1beta1.PeerAuthentication_MutualTLS_UNSET {
				return m, p
			}
		}
	}
	return securityv1beta1.PeerAuthentication_MutualTLS_UNSET, nil
}

// istioMutualChains applies PeerAuthentication to the TLS filter chain
// of an ISTIO_MUTUAL server (see above). plainTaken records that the
// port already has its plain-text chain.
func (t *translator) istioMutualChains(gs *gatewayServer, tlsChain *listenerv3.FilterChain, plainTaken *bool) []*listenerv3.FilterChain {
	if gs.server.GetTls().GetMode() != v1alpha3.ServerTLSSettings_ISTIO_MUTUAL {
		return []*listenerv3.FilterChain{tlsChain}
	}
	mode, policy := t.peerMTLSMode(gs.server.GetPort().GetNumber())
	if mode != securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE && mode != securityv1beta1.PeerAuthentication_MutualTLS_DISABLE {
		return []*listenerv3.FilterChain{tlsChain}
	}
	key := istio.Key{Kind: "PeerAuthentication", Namespace: policy.Namespace, Name: policy.Name}
	if *plainTaken {
		t.warn(key, "spec.mtls.mode", "%s: port %d already takes plain text for another server; %s of %s stays mTLS only",
			mode, gs.server.GetPort().GetNumber(), gs.field, gs.gateway)
		return []*listenerv3.FilterChain{tlsChain}
	}
	*plainTaken = true
	plain := &listenerv3.FilterChain{
		FilterChainMatch: &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"},
		Filters:          cloneFilters(tlsChain.Filters),
	}
	if mode == securityv1beta1.PeerAuthentication_MutualTLS_DISABLE {
		return []*listenerv3.FilterChain{plain}
	}
	m := &listenerv3.FilterChainMatch{}
	if tlsChain.FilterChainMatch != nil {
		m = proto.Clone(tlsChain.FilterChainMatch).(*listenerv3.FilterChainMatch)
	}
	m.TransportProtocol = "tls"
	tlsChain.FilterChainMatch = m
	return []*listenerv3.FilterChain{tlsChain, plain}
}

func cloneFilters(fs []*listenerv3.Filter) []*listenerv3.Filter {
	out := make([]*listenerv3.Filter, len(fs))
	for i, f := range fs {
		out[i] = proto.Clone(f).(*listenerv3.Filter)
	}
	return out
}
