package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/waygate/waygate/filters"
)

// issue makes a certificate for the template, signed by parent (self
// signed when parent is nil).
func issue(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (tls.Certificate, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, key
}

// TestAuthenticatedPrincipal runs the filter inside a real TLS server that
// asks for client certificates, and calls it with peers presenting a
// SPIFFE identity (the URI SAN Istio's source.principal matches), a DNS
// identity, and no certificate at all.
func TestAuthenticatedPrincipal(t *testing.T) {
	_, ca, caKey := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test-ca"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	serverCert, _, _ := issue(t, &x509.Certificate{DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
	spiffe, _ := url.Parse("spiffe://cluster.local/ns/default/sa/sleep")
	sleepCert, _, _ := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "sleep"}, URIs: []*url.URL{spiffe}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	dnsCert, _, _ := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "other"}, DNSNames: []string{"other.example"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)

	// Istio's source.principal "cluster.local/ns/default/sa/sleep" and
	// source.namespace "default", as istiod writes them for a gateway.
	f := mustNew(t, `rules { policies { key: "ns[default]-policy[p]-rule[0]" value {
		permissions { and_rules { rules { any: true } } }
		principals { and_ids { ids { or_ids { ids { authenticated { principal_name { exact: "spiffe://cluster.local/ns/default/sa/sleep" } } } } }
		                       ids { or_ids { ids { authenticated { principal_name { safe_regex { regex: ".*/ns/default/.*" } } } } } } } }
		principals { authenticated { principal_name { exact: "other.example" } } }
	} } }`, nil)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			x := req{path: r.URL.Path}.exchange()
			x.Downstream.TLS = r.TLS
			x.Downstream.RemoteAddr = netip.MustParseAddrPort(r.RemoteAddr)
			if st := run(f, x); st != filters.Continue {
				w.WriteHeader(x.LocalReply().Status)
				return
			}
			w.WriteHeader(http.StatusOK)
		}),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	tests := []struct {
		name string
		cert *tls.Certificate
		want int
	}{
		{"spiffe identity in namespace", &sleepCert, 200},
		{"dns identity", &dnsCert, 200},
		{"no client certificate", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
			if tt.cert != nil {
				cfg.Certificates = []tls.Certificate{*tt.cert}
			}
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
			resp, err := c.Get("https://" + ln.Addr().String() + "/productpage")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
