package translate

import (
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/waygate/waygate/gateway/istio"
)

const httpbinEntry = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  endpoints:
  - address: 127.0.0.1
    serviceAccount: httpbin
    labels: {security.istio.io/tlsMode: istio}
`

// upstreamSANs returns the SANs the cluster's Istio mTLS context
// expects: from its transport socket, else from its tlsMode-istio match.
func upstreamSANs(t *testing.T, c *clusterv3.Cluster) []string {
	t.Helper()
	ts := c.GetTransportSocket()
	for _, m := range c.GetTransportSocketMatches() {
		if m.Name == "tlsMode-istio" {
			ts = m.TransportSocket
		}
	}
	if ts == nil {
		t.Fatalf("cluster %s has no TLS", c.Name)
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		t.Fatal(err)
	}
	cv := ctx.GetCommonTlsContext().GetCombinedValidationContext()
	if cv.GetValidationContextSdsSecretConfig().GetName() != "ROOTCA" {
		t.Fatalf("cluster %s does not validate against ROOTCA", c.Name)
	}
	var out []string
	//nolint:staticcheck // the field istiod sets.
	for _, m := range cv.GetDefaultValidationContext().GetMatchSubjectAltNames() {
		out = append(out, m.GetExact())
	}
	return out
}

// Istio mTLS to a service checks the server's identity against the
// service accounts of its workloads, or the DestinationRule's
// subjectAltNames, as istiod configures secure naming.
func TestUpstreamIstioMutualSANs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra string
		want  []string
	}{
		{"auto mTLS", "", []string{"spiffe://cluster.local/ns/default/sa/httpbin"}},
		{"ISTIO_MUTUAL", `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin.default.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`, []string{"spiffe://cluster.local/ns/default/sa/httpbin"}},
		{"DestinationRule subjectAltNames win", `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin.default.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/default/sa/other"]}}
`, []string{"spiffe://cluster.local/ns/default/sa/other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, findings := istio.ParseDocuments("input.yaml", []byte(httpbinEntry+tc.extra))
			if istio.HasErrors(findings) {
				t.Fatal(findings)
			}
			res, _ := Translate(cfg, Proxy{})
			for _, c := range res.Clusters {
				if strings.HasPrefix(c.Name, "outbound|8000||httpbin") {
					if got := upstreamSANs(t, c); !slices.Equal(got, tc.want) {
						t.Fatalf("SANs = %v, want %v", got, tc.want)
					}
					return
				}
			}
			t.Fatal("no httpbin cluster")
		})
	}
}
