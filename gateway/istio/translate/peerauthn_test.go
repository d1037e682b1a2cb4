package translate

import (
	"fmt"
	"slices"
	"testing"

	"github.com/waygate/waygate/gateway/istio"
)

const istioMutualGateway = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mesh-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 15443, name: https-mesh, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ["*"]
  gateways: [mesh-gateway]
  http:
  - route:
    - destination: {host: web.default.svc.cluster.local, port: {number: 80}}
`

func peerPolicy(name, ns, selector, mode, portLevel string) string {
	y := fmt.Sprintf("---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: %s, namespace: %s}\nspec:\n", name, ns)
	if selector != "" {
		y += "  selector: {matchLabels: {" + selector + "}}\n"
	}
	if mode != "" {
		y += "  mtls: {mode: " + mode + "}\n"
	}
	if portLevel != "" {
		// Quoted: the loader does not take integer mapping keys yet
		// (json: unsupported type map[interface {}]interface {}).
		y += "  portLevelMtls: {'15443': {mode: " + portLevel + "}}\n"
	}
	return y
}

// chainShapes describes each filter chain of the listener as its
// transport protocol match and whether it terminates TLS.
func chainShapes(t *testing.T, res *Resources, name string) []string {
	t.Helper()
	for _, l := range res.Listeners {
		if l.Name != name {
			continue
		}
		var out []string
		for _, c := range l.FilterChains {
			s := c.GetFilterChainMatch().GetTransportProtocol()
			if s == "" {
				s = "any"
			}
			if c.TransportSocket != nil {
				s += "+mtls"
			}
			out = append(out, s)
		}
		if slices.ContainsFunc(out, func(s string) bool { return s != "any+mtls" }) && len(l.ListenerFilters) == 0 {
			t.Errorf("listener %s matches on transport protocol without tls_inspector", name)
		}
		return out
	}
	t.Fatalf("no listener %s", name)
	return nil
}

// PeerAuthentication decides whether an ISTIO_MUTUAL port also takes
// plain text, by the policy that applies to the gateway workload.
func TestPeerAuthenticationOnIstioMutualServer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policies string
		want     []string
	}{
		{"no policy keeps istiod's listener", "", []string{"any+mtls"}},
		{"mesh STRICT", peerPolicy("default", "istio-system", "", "STRICT", ""), []string{"any+mtls"}},
		{"mesh PERMISSIVE", peerPolicy("default", "istio-system", "", "PERMISSIVE", ""), []string{"tls+mtls", "raw_buffer"}},
		{"namespace DISABLE", peerPolicy("gw", "istio-system", "", "DISABLE", ""), []string{"raw_buffer"}},
		{"policy in another namespace does not apply", peerPolicy("default-strict", "default", "", "PERMISSIVE", ""), []string{"any+mtls"}},
		{"workload PERMISSIVE over mesh STRICT",
			peerPolicy("default", "istio-system", "", "STRICT", "") + peerPolicy("gw", "istio-system", "istio: ingressgateway", "PERMISSIVE", ""),
			[]string{"tls+mtls", "raw_buffer"}},
		{"selector for other workloads does not apply",
			peerPolicy("default", "istio-system", "", "STRICT", "") + peerPolicy("other", "istio-system", "app: reviews", "PERMISSIVE", ""),
			[]string{"any+mtls"}},
		{"workload UNSET inherits from the mesh",
			peerPolicy("default", "istio-system", "", "PERMISSIVE", "") + peerPolicy("gw", "istio-system", "istio: ingressgateway", "UNSET", ""),
			[]string{"tls+mtls", "raw_buffer"}},
		{"port level wins over the workload mode",
			peerPolicy("gw", "istio-system", "istio: ingressgateway", "PERMISSIVE", "STRICT"),
			[]string{"any+mtls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, findings := istio.ParseDocuments("input.yaml", []byte(istioMutualGateway+tc.policies))
			if istio.HasErrors(findings) {
				t.Fatal(findings)
			}
			res, _ := Translate(cfg, Proxy{})
			if got := chainShapes(t, res, "0.0.0.0_15443"); !slices.Equal(got, tc.want) {
				t.Fatalf("chains = %v, want %v", got, tc.want)
			}
		})
	}
}

// A SIMPLE server faces users: PeerAuthentication leaves it alone, as
// istiod does.
func TestPeerAuthenticationLeavesUserFacingServers(t *testing.T) {
	y := `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: web-cert}
` + peerPolicy("default", "istio-system", "", "DISABLE", "")
	cfg, findings := istio.ParseDocuments("input.yaml", []byte(y))
	if istio.HasErrors(findings) {
		t.Fatal(findings)
	}
	res, _ := Translate(cfg, Proxy{})
	if got := chainShapes(t, res, "0.0.0.0_443"); !slices.Equal(got, []string{"any+mtls"}) {
		t.Fatalf("chains = %v, want the TLS chain alone", got)
	}
}
