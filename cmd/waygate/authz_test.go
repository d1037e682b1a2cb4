package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// authzGateway routes every request on the gateway port to one echo
// backend.
const authzGateway = echoGateway

// The seed's AuthorizationPolicy task, applied at the gateway (namespace
// istio-system, selector istio=ingressgateway): each step is a new
// policy file on disk, and the gateway enforces it within seconds.
func TestRunAuthorizationPolicies(t *testing.T) {
	b := startBackend(t, "echo", "v1")
	_, bp, _ := net.SplitHostPort(b.Addr())
	var backendPort int
	fmt.Sscan(bp, &backendPort)
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
	write("gateway.yaml", fmt.Sprintf(authzGateway, port, backendPort))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stdout, _ := startRun(t, "--config", dir, "--admin", admin, "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path string, hdr map[string]string) (int, string) {
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	type check struct {
		method, path string
		hdr          map[string]string
		status       int
	}
	// apply writes the policy and waits until every check holds.
	apply := func(t *testing.T, policy string, checks []check) {
		t.Helper()
		write("policy.yaml", policy)
		var last string
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok := true
			for _, c := range checks {
				if st, body := do(c.method, c.path, c.hdr); st != c.status {
					ok = false
					last = fmt.Sprintf("%s %s %v: %d %q, want %d", c.method, c.path, c.hdr, st, body, c.status)
					break
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("policy not enforced within 10s: %s", last)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if st, _ := do("GET", "/productpage", nil); st != 200 {
		t.Fatalf("without policies: %d, want 200 (no ALLOW policy allows everything)", st)
	}

	t.Run("allow-nothing", func(t *testing.T) {
		apply(t, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: istio-system
spec: {}
`, []check{{"GET", "/productpage", nil, 403}, {"POST", "/productpage", nil, 403}})
		st, body := do("GET", "/productpage", nil)
		if st != 403 || body != "RBAC: access denied" {
			t.Errorf("got %d %q, want 403 \"RBAC: access denied\"", st, body)
		}
		// Envoy's counter, under the connection manager's stat prefix.
		waitFor(t, func() bool {
			resp, err := client.Get("http://" + admin + "/stats")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "http.") && strings.Contains(line, ".rbac.denied: ") && !strings.HasSuffix(line, ": 0") {
					return true
				}
			}
			return false
		})
	})

	t.Run("GET only", func(t *testing.T) {
		apply(t, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: productpage-viewer
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["GET"]
`, []check{{"GET", "/productpage", nil, 200}, {"POST", "/productpage", nil, 403}, {"DELETE", "/reviews/1", nil, 403}})
	})

	t.Run("paths and headers", func(t *testing.T) {
		apply(t, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: public-or-token
  namespace: istio-system
spec:
  action: ALLOW
  rules:
  - to:
    - operation:
        paths: ["/public/*", "/productpage"]
  - when:
    - key: request.headers[x-token]
      values: ["secret"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: istio-system
spec:
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/public/admin*"]
`, []check{
			{"GET", "/public/index.html", nil, 200},
			{"GET", "/productpage?u=1", nil, 200},
			{"GET", "/private", nil, 403},
			{"GET", "/private", map[string]string{"x-token": "secret"}, 200},
			{"GET", "/private", map[string]string{"x-token": "wrong"}, 403},
			{"GET", "/public/admin/users", map[string]string{"x-token": "secret"}, 403},
		})
	})

	t.Run("ipBlocks", func(t *testing.T) {
		apply(t, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: from-loopback
  namespace: istio-system
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        ipBlocks: ["127.0.0.1"]
`, []check{{"GET", "/anything", nil, 200}, {"POST", "/anything", nil, 200}})
		apply(t, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: from-elsewhere
  namespace: istio-system
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        ipBlocks: ["10.0.0.0/8"]
`, []check{{"GET", "/anything", nil, 403}})
		apply(t, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-loopback
  namespace: istio-system
spec:
  action: DENY
  rules:
  - from:
    - source:
        remoteIpBlocks: ["127.0.0.0/8"]
`, []check{{"GET", "/anything", nil, 403}})
	})

	t.Run("policies removed", func(t *testing.T) {
		apply(t, "# no policies\n", []check{{"DELETE", "/anything", nil, 200}})
	})
}

// Istio's external authorization task (authz-custom) at the gateway: a
// CUSTOM policy names an extension provider from --mesh-config, and the
// requests it matches are checked by that authorizer.
func TestRunCustomAuthorization(t *testing.T) {
	b := startBackend(t, "echo", "v1")
	authz := startHTTPAuthorizer(t)
	port := freePort(t)
	dir := t.TempDir()
	var backendPort, authzPort int
	_, bp, _ := net.SplitHostPort(b.Addr())
	fmt.Sscan(bp, &backendPort)
	_, ap, _ := net.SplitHostPort(authz)
	fmt.Sscan(ap, &authzPort)
	config := fmt.Sprintf(authzGateway, port, backendPort) + fmt.Sprintf(`---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ext-authz
  namespace: foo
spec:
  hosts: [ext-authz.foo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 8000, name: http, protocol: HTTP}
  endpoints:
  - address: 127.0.0.1
    ports: {http: %d}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ext-authz
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  action: CUSTOM
  provider:
    name: sample-ext-authz-http
  rules:
  - to:
    - operation:
        paths: ["/headers*"]
`, authzPort)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	mesh := filepath.Join(t.TempDir(), "mesh.yaml")
	if err := os.WriteFile(mesh, []byte(`
extensionProviders:
- name: sample-ext-authz-http
  envoyExtAuthzHttp:
    service: ext-authz.foo.svc.cluster.local
    port: 8000
    includeRequestHeadersInCheck: ["x-ext-authz"]
    headersToUpstreamOnAllow: ["x-ext-authz-check-result"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _ := startRun(t, "--config", dir, "--mesh-config", mesh, "--admin", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cl := &http.Client{Timeout: 5 * time.Second}
	do := func(path string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	waitFor(t, func() bool { st, _ := do("/headers", nil); return st == 403 })
	if st, body := do("/headers", nil); st != 403 || !strings.Contains(body, "denied by ext_authz") {
		t.Errorf("without x-ext-authz: %d %q, want the authorizer's 403", st, body)
	}
	st, body := do("/headers", map[string]string{"x-ext-authz": "allow"})
	if st != 200 {
		t.Fatalf("with x-ext-authz: allow: %d %q", st, body)
	}
	if e := decodeEcho(t, []byte(body)); e.Headers["x-ext-authz-check-result"] != "allowed" {
		t.Errorf("backend headers %v, want the authorizer's x-ext-authz-check-result", e.Headers)
	}
	if st, body := do("/productpage", nil); st != 200 {
		t.Errorf("a path no CUSTOM rule matches: %d %q, want 200 without a check", st, body)
	}
}
