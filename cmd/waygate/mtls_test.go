package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waygate/waygate/gateway/ca"
)

// mtlsGateway serves the echo backend on an ISTIO_MUTUAL port: the
// gateway presents its workload certificate and asks for the client's.
const mtlsGateway = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mesh-gateway
  namespace: default
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: %d, name: https-mesh, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: echo
  namespace: default
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http, protocol: HTTP}
  endpoints:
  - address: 127.0.0.1
    ports: {http: %d}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: default
spec:
  hosts: ["*"]
  gateways: [mesh-gateway]
  http:
  - route:
    - destination: {host: echo}
`

// The seed's PeerAuthentication, mesh-wide: the gateway runs in
// istio-system, which a policy in "default" does not reach.
const meshPeerAuthentication = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: %s
`

// The seed's details-viewer policy, at the gateway.
const principalPolicy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: sleep-only
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    to:
    - operation:
        methods: ["GET"]
`

// gatewayIdentity is the SPIFFE identity the gateway's certificate
// carries by default.
const gatewayIdentity = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"

// meshClient is an HTTPS client speaking Istio mTLS with a certificate
// for id from the mesh CA in dir (none when id is empty). Like a
// sidecar it checks the gateway's SPIFFE identity, not a host name.
func meshClient(t *testing.T, dir string, id *ca.Identity) *http.Client {
	t.Helper()
	c, err := ca.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.Root())
	cfg := &tls.Config{
		InsecureSkipVerify: true, // verified below, by SPIFFE identity
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf := cs.PeerCertificates[0]
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
				return err
			}
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != gatewayIdentity {
				return fmt.Errorf("gateway identity %v, want %s", leaf.URIs, gatewayIdentity)
			}
			return nil
		},
	}
	if id != nil {
		wc, err := c.Issue(*id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := wc.TLS()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// try sends one GET and returns its status, or the error.
func try(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// The seed's mTLS task on Waygate's mesh-facing port: waygate run keeps
// its CA in --ca-dir and serves an ISTIO_MUTUAL port with its workload
// certificate; a client holding a certificate from that CA gets
// through. PeerAuthentication STRICT refuses plain text, PERMISSIVE
// takes both; an AuthorizationPolicy on source principals lets the
// sleep identity in and keeps another identity out.
func TestRunIstioMutualTLS(t *testing.T) {
	echoBackend := startBackend(t, "echo", "v1")
	_, bp, _ := net.SplitHostPort(echoBackend.Addr())
	var backendPort int
	fmt.Sscan(bp, &backendPort)
	port := freePort(t)
	dir, caDir := t.TempDir(), filepath.Join(t.TempDir(), "ca")
	write := func(name, body string) {
		t.Helper()
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("gateway.yaml", fmt.Sprintf(mtlsGateway, port, backendPort))
	write("peer.yaml", fmt.Sprintf(meshPeerAuthentication, "STRICT"))
	stdout, _ := startRun(t, "--config", dir, "--ca-dir", caDir, "--admin", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

	sleep := meshClient(t, caDir, &ca.Identity{Namespace: "default", ServiceAccount: "sleep"})
	other := meshClient(t, caDir, &ca.Identity{Namespace: "default", ServiceAccount: "other"})
	noCert := meshClient(t, caDir, nil)
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tlsURL := fmt.Sprintf("https://127.0.0.1:%d/", port)
	plainURL := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// The listener warms until its SDS secrets arrive.
	waitFor(t, func() bool { code, _ := try(sleep, tlsURL); return code == 200 })

	t.Run("STRICT", func(t *testing.T) {
		if code, err := try(sleep, tlsURL); code != 200 {
			t.Errorf("sleep with mTLS: %d %v, want 200", code, err)
		}
		if code, err := try(plain, plainURL); err == nil {
			t.Errorf("plain text got %d, want the connection refused", code)
		}
		if code, err := try(noCert, tlsURL); err == nil {
			t.Errorf("TLS without a client certificate got %d, want the handshake refused", code)
		}
		// A certificate from another CA is no mesh identity.
		stranger := t.TempDir()
		if code, err := try(meshClient(t, stranger, &ca.Identity{Namespace: "default", ServiceAccount: "sleep"}), tlsURL); err == nil {
			t.Errorf("a certificate from another CA got %d, want the handshake refused", code)
		}
	})

	t.Run("PERMISSIVE", func(t *testing.T) {
		write("peer.yaml", fmt.Sprintf(meshPeerAuthentication, "PERMISSIVE"))
		waitFor(t, func() bool { code, _ := try(plain, plainURL); return code == 200 })
		if code, err := try(sleep, tlsURL); code != 200 {
			t.Errorf("sleep with mTLS: %d %v, want 200", code, err)
		}
	})

	t.Run("principals", func(t *testing.T) {
		write("authz.yaml", principalPolicy)
		waitFor(t, func() bool { code, _ := try(other, tlsURL); return code == 403 })
		if code, err := try(sleep, tlsURL); code != 200 {
			t.Errorf("sleep: %d %v, want 200", code, err)
		}
		if code, err := try(plain, plainURL); code != 403 {
			t.Errorf("plain text, no principal: %d %v, want 403", code, err)
		}
	})
}

// upstreamMesh routes a plain HTTP port to httpbin, a mesh workload
// running as default/httpbin whose sidecar takes Istio mTLS only.
const upstreamMesh = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: web
  namespace: default
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: %d, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin
  namespace: default
spec:
  hosts: [httpbin.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 8000, name: http, protocol: HTTP}
  endpoints:
  - address: 127.0.0.1
    ports: {http: %d}
    serviceAccount: httpbin
    labels: {security.istio.io/tlsMode: istio}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
  namespace: default
spec:
  hosts: ["*"]
  gateways: [web]
  http:
  - route:
    - destination: {host: httpbin, port: {number: 8000}}
`

// startSidecar serves HTTP over Istio mTLS as a sidecar does: the
// certificate of id from the CA in dir, a client certificate from the
// same root required. It answers with the client's SPIFFE identity.
func startSidecar(t *testing.T, dir string, id ca.Identity) int {
	t.Helper()
	c, err := ca.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	wc, err := c.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := wc.TLS()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.Root())
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-peer", r.TLS.PeerCertificates[0].URIs[0].String())
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// Upstream Istio mTLS: the gateway reaches a mesh workload with its own
// workload certificate and checks the workload's identity, by auto mTLS
// (the endpoint's tlsMode label) and by a DestinationRule ISTIO_MUTUAL;
// a DestinationRule expecting another identity gets no connection.
func TestRunIstioMutualUpstream(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "ca")
	// The CA exists before the gateway starts, so the workload's
	// certificate comes from the root waygate run then loads.
	backendPort := startSidecar(t, caDir, ca.Identity{Namespace: "default", ServiceAccount: "httpbin"})
	port := freePort(t)
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("mesh.yaml", fmt.Sprintf(upstreamMesh, port, backendPort))
	stdout, _ := startRun(t, "--config", dir, "--ca-dir", caDir, "--admin", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	c := &http.Client{Timeout: 5 * time.Second}
	peer := func() (int, string) {
		resp, err := c.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("x-peer")
	}

	t.Run("auto mTLS", func(t *testing.T) {
		// The cluster connects once the SDS secrets arrive.
		waitFor(t, func() bool { code, _ := peer(); return code == 200 })
		if code, got := peer(); code != 200 || got != gatewayIdentity {
			t.Fatalf("got %d, peer %q; want 200 from the workload, which saw %s", code, got, gatewayIdentity)
		}
	})
	t.Run("wrong identity", func(t *testing.T) {
		write("dr.yaml", `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin.default.svc.cluster.local
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/default/sa/reviews"]}
`)
		waitFor(t, func() bool { code, _ := peer(); return code == 503 })
	})
	t.Run("ISTIO_MUTUAL", func(t *testing.T) {
		write("dr.yaml", `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin.default.svc.cluster.local
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
`)
		waitFor(t, func() bool { code, got := peer(); return code == 200 && got == gatewayIdentity })
	})
}

// waygate ca writes a workload certificate from the CA directory that
// waygate run uses, with the file names of Istio's mounted certificates.
func TestCACommand(t *testing.T) {
	caDir, out := filepath.Join(t.TempDir(), "ca"), t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no CA directory", []string{"ca", "--identity", "default/sleep"}, 2},
		{"identity without namespace", []string{"ca", "--ca-dir", caDir, "--identity", "sleep"}, 2},
		{"issue", []string{"ca", "--ca-dir", caDir, "--identity", "default/sleep", "--out", out}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, tc.args...)
			b, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != tc.code {
				t.Fatalf("exit %d, want %d: %s", got, tc.code, b)
			}
		})
	}
	kp, err := tls.LoadX509KeyPair(filepath.Join(out, "cert-chain.pem"), filepath.Join(out, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(kp.Certificate[0])
	rootPEM, err := os.ReadFile(filepath.Join(out, "root-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/default/sa/sleep" {
		t.Fatalf("identity %v", leaf.URIs)
	}
	c, err := ca.Open(caDir, "")
	if err != nil || string(c.RootPEM()) != string(rootPEM) {
		t.Fatalf("root-cert.pem is not the root kept in --ca-dir (%v)", err)
	}
}
