package ca

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	c, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tlsCert(t *testing.T, c *CA, id Identity) tls.Certificate {
	t.Helper()
	wc, err := c.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := wc.TLS()
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// Two workloads with certificates from the same CA complete a mutual
// TLS handshake over loopback, each seeing the other's SPIFFE identity;
// a certificate from another CA is refused.
func TestMutualHandshake(t *testing.T) {
	c := newCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(c.Root())
	server := Identity{Namespace: "default", ServiceAccount: "httpbin"}
	client := Identity{Namespace: "default", ServiceAccount: "sleep"}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	peers := make(chan string, 4)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				sc := tls.Server(nc, &tls.Config{
					Certificates: []tls.Certificate{tlsCert(t, c, server)},
					ClientAuth:   tls.RequireAndVerifyClientCert,
					ClientCAs:    roots,
				})
				if err := sc.Handshake(); err != nil {
					peers <- "error: " + err.Error()
					return
				}
				peers <- sc.ConnectionState().PeerCertificates[0].URIs[0].String()
				io.Copy(io.Discard, sc)
			}()
		}
	}()

	for _, tc := range []struct {
		name     string
		ca       *CA
		wantPeer string
	}{
		{"same CA", c, "spiffe://cluster.local/ns/default/sa/sleep"},
		{"other CA", newCA(t), "error:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
				Certificates: []tls.Certificate{tlsCert(t, tc.ca, client)},
				RootCAs:      roots,
				// Istio peers check the SPIFFE identity, not a host name.
				InsecureSkipVerify: true,
				VerifyConnection: func(cs tls.ConnectionState) error {
					opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
					if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
						return err
					}
					if got := cs.PeerCertificates[0].URIs[0].String(); got != "spiffe://cluster.local/ns/default/sa/httpbin" {
						return errors.New("server is " + got)
					}
					return nil
				},
			})
			if err == nil {
				// TLS 1.3: the server's verdict on the client certificate
				// arrives with the first read.
				conn.Write([]byte("x"))
				conn.Close()
			}
			got := <-peers
			if !strings.HasPrefix(got, tc.wantPeer) {
				t.Fatalf("server saw %q, want %q", got, tc.wantPeer)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	c, err := New("example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		id      Identity
		life    time.Duration
		wantURI string
		wantErr string
	}{
		{"gateway", GatewayIdentity, 0, "spiffe://example.org/ns/istio-system/sa/istio-ingressgateway-service-account", ""},
		{"short", Identity{"default", "sleep"}, time.Minute, "spiffe://example.org/ns/default/sa/sleep", ""},
		{"no namespace", Identity{"", "sleep"}, 0, "", "namespace is empty"},
		{"slash", Identity{"default", "a/b"}, 0, "", "has a slash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wc, err := c.Issue(tc.id, tc.life)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc2, err := wc.TLS()
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := x509.ParseCertificate(tc2.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != tc.wantURI {
				t.Errorf("URIs = %v, want %s", leaf.URIs, tc.wantURI)
			}
			if len(tc2.Certificate) != 2 {
				t.Errorf("chain has %d certificates, want leaf and root", len(tc2.Certificate))
			}
			want := tc.life
			if want == 0 {
				want = DefaultLifetime
			}
			if got := leaf.NotAfter.Sub(time.Now()); got > want || got < want-5*time.Second {
				t.Errorf("certificate valid for %v more, want about %v", got, want)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(c), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("leaf does not verify as a client: %v", err)
			}
		})
	}
}

func pool(c *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Root())
	return p
}

// A CA directory keeps the root across restarts; a damaged one is an
// error rather than a silently new root.
func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	a, err := Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	b, err := Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.RootPEM(), b.RootPEM()) {
		t.Fatal("reopening made a new root")
	}
	// A certificate issued before the restart verifies after it.
	wc, _ := a.Issue(Identity{"default", "sleep"}, time.Hour)
	tc, _ := wc.TLS()
	leaf, _ := x509.ParseCertificate(tc.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(b), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatal(err)
	}

	other := newCA(t)
	for _, tc := range []struct {
		name, cert, key, wantErr string
	}{
		{"garbage certificate", "nope", "", "no PEM certificate"},
		{"key of another CA", string(a.RootPEM()), keyPEM(t, other), "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, CertFile), []byte(tc.cert), 0o644)
			os.WriteFile(filepath.Join(d, KeyFile), []byte(tc.key), 0o600)
			if _, err := Open(d, ""); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func keyPEM(t *testing.T, c *CA) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pemBlock("PRIVATE KEY", der))
}

// Workloads keeps one certificate per identity until half its lifetime
// has passed, then issues a new one.
func TestWorkloadsRenew(t *testing.T) {
	now := time.Now()
	w := &Workloads{CA: newCA(t), Lifetime: time.Hour, Now: func() time.Time { return now }}
	id := Identity{"istio-system", "gw"}
	first, err := w.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := w.Get(id); again != first {
		t.Fatal("a fresh certificate was replaced")
	}
	if next := w.NextRenewal(); next.Sub(first.issued) != first.NotAfter.Sub(first.issued)/2 {
		t.Errorf("next renewal %v is not halfway from %v to %v", next, first.issued, first.NotAfter)
	}
	now = w.NextRenewal().Add(time.Second)
	renewed, err := w.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || bytes.Equal(renewed.KeyPEM, first.KeyPEM) {
		t.Fatal("a certificate due for renewal was kept")
	}
	w.Forget(func(Identity) bool { return false })
	if !w.NextRenewal().IsZero() {
		t.Error("Forget kept a certificate")
	}
}
