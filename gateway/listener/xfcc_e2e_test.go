package listener_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// An Istio gateway's connection manager (SANITIZE_SET with subject,
// cert, DNS and URI): a backend behind a mutual TLS port sees the
// verified client certificate in x-forwarded-client-cert, and never
// what a client wrote there itself.
func TestForwardClientCert(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	serverCA := newCA(t, "server CA")
	clientCA := newCA(t, "client CA")
	serverCert := issue(t, &serverCA, "gw", false, "gw.example.com", "spiffe://cluster.local/ns/istio-system/sa/gateway")
	client := issue(t, &clientCA, "client", false, "spiffe://cluster.local/ns/default/sa/client")
	l := newListener("xfcc", "127.0.0.1:0", &listenerv3.FilterChain{
		TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{
			RequireClientCertificate: wrapperspb.Bool(false),
			CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsCertificates: []*tlsv3.TlsCertificate{serverCert.tlsCertificate()},
				ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
					TrustedCa: inline(clientCA.cert),
				}},
			},
		}),
		Filters: []*listenerv3.Filter{httpFilter(t, "web", func(m *hcmv3.HttpConnectionManager) {
			m.ForwardClientCertDetails = hcmv3.HttpConnectionManager_SANITIZE_SET
			m.SetCurrentClientCertDetails = &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{
				Subject: wrapperspb.Bool(true), Cert: true, Dns: true, Uri: true,
			}
		})},
	})
	g.mustApply(resourcev3.ListenerType, l)
	u := "https://" + g.addr("xfcc") + "/"
	// Each client also claims an identity of its own in the header.
	claim := func(c *http.Client) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Forwarded-Client-Cert", "URI=spiffe://cluster.local/ns/istio-system/sa/admin")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e echo
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		v, ok := e.Headers["x-forwarded-client-cert"]
		if !ok {
			return "<none>"
		}
		return v
	}

	// With a client certificate: the header names it, and only it.
	got := claim(tlsClient(serverCA.pool(), "gw.example.com", client.pair(t)))
	sum := sha256.Sum256(client.x509.Raw)
	for _, want := range []string{
		"By=spiffe://cluster.local/ns/istio-system/sa/gateway;",
		"Hash=" + hex.EncodeToString(sum[:]) + ";",
		`Cert="-----BEGIN%20CERTIFICATE-----%0A`,
		`Subject="CN=client"`,
		"URI=spiffe://cluster.local/ns/default/sa/client",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("x-forwarded-client-cert %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "sa/admin") {
		t.Errorf("x-forwarded-client-cert %q kept the client's own value", got)
	}

	// Without one, over TLS: the client's own header is removed.
	if got := claim(tlsClient(serverCA.pool(), "gw.example.com")); got != "<none>" {
		t.Errorf("without a client certificate the backend saw x-forwarded-client-cert %q", got)
	}
}
