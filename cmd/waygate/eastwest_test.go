package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// eastWestGateway is an AUTO_PASSTHROUGH server on port %[1]d for the
// mesh's hosts, and the service "mesh-app" whose one endpoint, on port
// %[2]d, terminates TLS itself (as a sidecar terminates the mesh's mTLS).
const eastWestGateway = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: cross-network-gateway
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: %[1]d, name: tls, protocol: TLS}
    hosts: ["*.local"]
    tls: {mode: AUTO_PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: mesh-app
  namespace: default
spec:
  hosts: [mesh-app.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 8443, name: https, protocol: HTTPS}
  endpoints:
  - address: 127.0.0.1
    ports: {https: %[2]d}
`

// TestRunEastWestAutoPassthrough: a client in another network reaches
// a mesh service through the east-west gateway by naming it in its SNI
// (outbound_.<port>_.<subset>_.<host>); the gateway passes the TLS
// connection through to the service, which terminates it. A name
// outside the server's hosts gets no chain.
func TestRunEastWestAutoPassthrough(t *testing.T) {
	app := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "mesh-app saw %s", r.TLS.ServerName)
	}))
	t.Cleanup(app.Close)
	port := freePort(t)
	dir := t.TempDir()
	writeGatewayConfig(t, dir, fmt.Sprintf(eastWestGateway, port, tcpPort(t, app.Listener.Addr().String())))
	startServingRun(t, nil, dir)

	get := func(sni string) (string, error) {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true},
		}}
		defer client.CloseIdleConnections()
		// The request goes to the gateway; the SNI picks the service.
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	sni := "outbound_.8443_._.mesh-app.default.svc.cluster.local"
	var body string
	var err error
	waitFor(t, func() bool { body, err = get(sni); return err == nil })
	if want := "mesh-app saw " + sni; body != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if _, err := get("outbound_.8443_._.mesh-app.example.com"); err == nil {
		t.Error("a name outside the server's hosts was passed through")
	}
	// A plain-text connection matches no chain either.
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Errorf("plain text got %q", b)
		}
		c.Close()
	}
}
