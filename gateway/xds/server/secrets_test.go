package server

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/gateway/ca"
)

func TestIdentityOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		md   map[string]any
		want string
	}{
		{"no metadata", nil, "istio-system/istio-ingressgateway-service-account"},
		{"namespace only", map[string]any{"NAMESPACE": "gw"}, "gw/istio-ingressgateway-service-account"},
		{"service account", map[string]any{"NAMESPACE": "default", "SERVICE_ACCOUNT": "sleep"}, "default/sleep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md, err := structpb.NewStruct(tc.md)
			if err != nil {
				t.Fatal(err)
			}
			if got := identityOf(proxyOf(&corev3.Node{Id: "n", Metadata: md})).String(); got != tc.want {
				t.Fatalf("identity = %s, want %s", got, tc.want)
			}
		})
	}
}

// secretsOf reads a secrets response into the proxy's certificate and
// its root.
func secretsOf(t *testing.T, resp *discoverygrpc.DiscoveryResponse) (*x509.Certificate, *x509.CertPool) {
	t.Helper()
	var leaf *x509.Certificate
	roots := x509.NewCertPool()
	for _, r := range resp.Resources {
		s := &tlsv3.Secret{}
		if err := r.UnmarshalTo(s); err != nil {
			t.Fatal(err)
		}
		switch s.Name {
		case "default":
			c := s.GetTlsCertificate()
			kp, err := tls.X509KeyPair(c.GetCertificateChain().GetInlineBytes(), c.GetPrivateKey().GetInlineBytes())
			if err != nil {
				t.Fatal(err)
			}
			if leaf, err = x509.ParseCertificate(kp.Certificate[0]); err != nil {
				t.Fatal(err)
			}
		case "ROOTCA":
			if !roots.AppendCertsFromPEM(s.GetValidationContext().GetTrustedCa().GetInlineBytes()) {
				t.Fatal("ROOTCA holds no certificate")
			}
		default:
			t.Fatalf("unexpected secret %q", s.Name)
		}
	}
	if leaf == nil {
		t.Fatalf("no default secret in %d resources", len(resp.Resources))
	}
	return leaf, roots
}

// A proxy subscribing to "default" and "ROOTCA" gets a certificate for
// the identity of its node metadata, verified by the root, and a new
// one pushed before the old one expires.
func TestMeshSecretsServedAndRenewed(t *testing.T) {
	root, err := ca.New("")
	if err != nil {
		t.Fatal(err)
	}
	s := New(nil)
	s.CA = &ca.Workloads{CA: root, Lifetime: 2 * time.Second}
	s.Update(config(t, "8080"))
	conn := start(t, s)
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	md, _ := structpb.NewStruct(map[string]any{"NAMESPACE": "default", "SERVICE_ACCOUNT": "sleep"})
	req := &discoverygrpc.DiscoveryRequest{
		Node:          &corev3.Node{Id: "sleep-1", Metadata: md},
		TypeUrl:       resourcev3.SecretType,
		ResourceNames: []string{"default", "ROOTCA"},
	}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	leaf, roots := secretsOf(t, first)
	if got := leaf.URIs[0].String(); got != "spiffe://cluster.local/ns/default/sa/sleep" {
		t.Errorf("certificate identity %s", got)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not verify against ROOTCA: %v", err)
	}
	if err := stream.Send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.SecretType, ResourceNames: req.ResourceNames,
		VersionInfo: first.VersionInfo, ResponseNonce: first.Nonce}); err != nil {
		t.Fatal(err)
	}

	renewed, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	next, _ := secretsOf(t, renewed)
	if next.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("the pushed certificate is the old one")
	}
	if !time.Now().Before(leaf.NotAfter) {
		t.Errorf("renewed at %v, after the old certificate expired at %v", time.Now(), leaf.NotAfter)
	}
}
