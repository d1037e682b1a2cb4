package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// istioMutual is the upstream context istiod generates for Istio mTLS:
// the workload certificate and the root over SDS, and secure naming.
func istioMutual(sans ...string) *tlsv3.UpstreamTlsContext {
	vc := &tlsv3.CertificateValidationContext{}
	for _, s := range sans {
		vc.MatchSubjectAltNames = append(vc.MatchSubjectAltNames, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}})
	}
	return &tlsv3.UpstreamTlsContext{
		Sni: "outbound_.8000_._.httpbin.default.svc.cluster.local",
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "default"}},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext:         vc,
					ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "ROOTCA"},
				},
			},
			AlpnProtocols: []string{"istio-peer-exchange", "istio"},
		},
	}
}

// serveMutual accepts one TLS connection requiring a client certificate
// from roots and reports the client's identity, or the handshake error.
func serveMutual(t *testing.T, cert keyPair, roots *x509.CertPool) (string, <-chan string) {
	t.Helper()
	kp, err := tls.X509KeyPair(cert.cert, cert.key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen := make(chan string, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		sc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots})
		if err := sc.Handshake(); err != nil {
			seen <- "error: " + err.Error()
			return
		}
		cs := sc.ConnectionState()
		seen <- cs.ServerName + " " + cs.PeerCertificates[0].URIs[0].String()
		sc.Write([]byte("ok"))
	}()
	return ln.Addr().String(), seen
}

// A cluster's Istio mTLS context presents the workload certificate,
// sends istiod's SNI, and accepts the server only when its certificate
// comes from the mesh root and carries an expected identity.
func TestUpstreamIstioMutual(t *testing.T) {
	root := issue(t, nil, "root")
	other := issue(t, nil, "other root")
	gateway := issue(t, &root, "", "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account")
	httpbin := issue(t, &root, "", "spiffe://cluster.local/ns/default/sa/httpbin")
	impostor := issue(t, &other, "", "spiffe://cluster.local/ns/default/sa/httpbin")
	roots := x509.NewCertPool()
	roots.AddCert(root.x509)
	mesh := secrets{
		"default": {Name: "default", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: gateway.tlsCertificate()}},
		"ROOTCA":  {Name: "ROOTCA", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline(root.cert)}}},
	}

	for _, tc := range []struct {
		name    string
		server  keyPair
		sans    []string
		wantErr string
	}{
		{"expected identity", httpbin, []string{"spiffe://cluster.local/ns/default/sa/httpbin"}, ""},
		{"any identity of the mesh", httpbin, nil, ""},
		{"wrong identity", httpbin, []string{"spiffe://cluster.local/ns/default/sa/reviews"}, "match no allowed name"},
		{"another root", impostor, nil, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Upstream(istioMutual(tc.sans...), mesh)
			if err != nil {
				t.Fatal(err)
			}
			addr, seen := serveMutual(t, tc.server, roots)
			conn, err := tls.Dial("tcp", addr, cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			buf := make([]byte, 2)
			conn.Read(buf)
			if got, want := <-seen, "outbound_.8000_._.httpbin.default.svc.cluster.local spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"; got != want {
				t.Fatalf("server saw %q, want %q", got, want)
			}
		})
	}
}

// Before SDS delivers the workload certificate the context is missing a
// secret, which the cluster waits for rather than rejects.
func TestUpstreamMissingSecret(t *testing.T) {
	for _, s := range []Secrets{nil, secrets{}} {
		if _, err := Upstream(istioMutual(), s); !errors.Is(err, ErrMissingSecret) {
			t.Fatalf("err = %v, want ErrMissingSecret", err)
		}
	}
}
