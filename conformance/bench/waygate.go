package bench

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// startWaygate runs `waygate run` on a generated directory of Istio YAML:
// a Gateway on a free port, a ServiceEntry for the backend and a
// VirtualService routing to it (plus the filter chain's resources when
// the setup asks for them). The access log is off, as it is for the
// other proxies. A push rewrites the VirtualService with a new response
// header value, which the control plane turns into a new route
// configuration.
func startWaygate(bin string, s Setup) (*Target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host, bport, err := net.SplitHostPort(s.Backend)
	if err != nil {
		return nil, err
	}
	name := "waygate"
	if s.Filters != nil {
		name = "waygate+filters"
	}
	t := &Target{Name: name, Addr: fmt.Sprintf("127.0.0.1:%d", port), TLS: s.TLS != nil}
	server := fmt.Sprintf("  - port: {number: %d, name: http, protocol: HTTP}\n", port)
	if s.TLS != nil {
		server = fmt.Sprintf("  - port: {number: %d, name: https, protocol: HTTPS}\n    tls: {mode: SIMPLE, serverCertificate: %s, privateKey: %s}\n", port, s.TLS.Cert, s.TLS.Key)
	}
	t.H2Addr = t.Addr
	cfg := filepath.Join(s.Dir, "config")
	base := fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
%s    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: default}
spec:
  hosts: [backend.bench]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: %s, name: http, protocol: HTTP}]
  endpoints: [{address: %s}]
`, server, bport, host)
	if err := writeFile(filepath.Join(cfg, "base.yaml"), base); err != nil {
		return nil, err
	}
	if s.Filters != nil {
		if err := writeFile(filepath.Join(cfg, "filters.yaml"), s.Filters.yaml()); err != nil {
			return nil, err
		}
		t.Headers = map[string]string{"Authorization": "Bearer " + s.Filters.Token}
	}
	vsPath := filepath.Join(cfg, "virtualservice.yaml")
	if err := writeFile(vsPath, virtualService(s, bport, 0)); err != nil {
		return nil, err
	}
	t.Reload = func(n int) error { return writeFile(vsPath, virtualService(s, bport, n)) }
	t.Applied = func(n int) bool { return pushServed(t, n) }

	t.proc, err = startProcess(name, nil, bin, "run", "--config", cfg, "--admin", "127.0.0.1:0",
		"--access-log", "", "--drain-time", "1s", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for t.Admin == "" {
		if m := adminLine.FindStringSubmatch(t.proc.out.String()); m != nil {
			t.Admin = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.proc.stop()
			return nil, fmt.Errorf("waygate run did not say it is serving within 30s: %s", t.proc.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := t.proc.waitListening(t.Addr); err != nil {
		t.proc.stop()
		return nil, err
	}
	if s.Filters != nil {
		if err := waitWasmPlugin(t.Admin); err != nil {
			t.proc.stop()
			return nil, err
		}
	}
	return t, nil
}

// waitWasmPlugin waits for the filter chain's WasmPlugin to be in the
// gateway's configuration (it arrives through ECDS, after the listener),
// so that no measured request goes without it.
func waitWasmPlugin(admin string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/config_dump")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "bench-header") && strings.Contains(string(b), "envoy.extensions.filters.http.wasm.v3.Wasm") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the WasmPlugin bench-header is not in %s/config_dump after 30s", admin)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminLine is how `waygate run` names its admin address once serving.
var adminLine = regexp.MustCompile(`(?s)waygate is serving.*\n\s*admin: http://([^/\s]+)/`)

// virtualService routes everything to the backend; push numbers the
// x-bench-push response header so each push is a real route change.
func virtualService(s Setup, port string, push int) string {
	dest := fmt.Sprintf("    route: [{destination: {host: backend.bench, port: {number: %s}}}]\n", port)
	var b strings.Builder
	b.WriteString(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bench]
  http:
`)
	for i := range s.Routes {
		fmt.Fprintf(&b, "  - match: [{uri: {prefix: /r%d/}}]\n", i)
		b.WriteString(dest)
	}
	b.WriteString("  - name: default\n")
	b.WriteString(dest)
	fmt.Fprintf(&b, "    headers: {response: {set: {x-bench-push: \"%d\"}}}\n", push)
	if s.Filters != nil {
		b.WriteString("    fault: {abort: {percentage: {value: 0}, httpStatus: 503}}\n")
	}
	return b.String()
}

// pushServed says whether push n's route serves: the default route (a
// path no prefix route matches) answers with its x-bench-push value.
func pushServed(t *Target, n int) bool {
	req, err := http.NewRequest(http.MethodGet, t.url("/1k"), nil)
	if err != nil {
		return false
	}
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	resp, err := pushClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("x-bench-push") == fmt.Sprint(n)
}

// pushClient checks pushes on a connection of its own, outside the load.
var pushClient = &http.Client{Timeout: time.Second}
