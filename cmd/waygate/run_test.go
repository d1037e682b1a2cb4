package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startRun starts `waygate run` with args and returns its stdout lines
// as they come, and the combined log.
func startRun(t *testing.T, args ...string) (*syncBuffer, *syncBuffer) {
	t.Helper()
	return startRunEnv(t, nil, args...)
}

// startRunEnv is startRun with extra environment variables (KEY=value)
// for the process.
func startRunEnv(t *testing.T, env []string, args ...string) (*syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"run"}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})
	return stdout, stderr
}

const runGateway = gatewayDoc + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: echo
  namespace: default
spec:
  host: echo
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
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
    labels: {version: v1}
  - address: 127.0.0.1
    ports: {http: %d}
    labels: {version: v2}
`

const runRoute = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: default
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route:
    - destination: {host: echo, subset: %s}
`

// Editing a VirtualService on disk under a request loop switches the
// routing within two seconds, and no request fails on the way.
func TestRunAppliesEditsWithoutFailures(t *testing.T) {
	v1, v2 := startBackend(t, "echo", "v1"), startBackend(t, "echo", "v2")
	port := freePort(t)
	dir := t.TempDir()
	_, p1, _ := net.SplitHostPort(v1.Addr())
	_, p2, _ := net.SplitHostPort(v2.Addr())
	var n1, n2 int
	fmt.Sscan(p1, &n1)
	fmt.Sscan(p2, &n2)
	write := func(name, body string) {
		t.Helper()
		// Write then rename, as editors save.
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("gateway.yaml", fmt.Sprintf(runGateway, port, n1, n2))
	write("route.yaml", fmt.Sprintf(runRoute, "v1"))
	stdout, _ := startRun(t, "--config", dir, "--admin", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })
	if !strings.Contains(stdout.String(), fmt.Sprintf("curl -s http://127.0.0.1:%d/", port)) {
		t.Errorf("the summary does not say what to curl:\n%s", stdout.String())
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var failures, total atomic.Int64
	var switched atomic.Int64 // unix nanos when v2 first answered
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Timeout: 5 * time.Second}
			for i := 0; i < 20000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := cl.Get(url)
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				} else if resp.Header.Get("x-version") == "v2" {
					switched.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}()
	}
	waitFor(t, func() bool { return total.Load() > 50 })
	edited := time.Now()
	write("route.yaml", fmt.Sprintf(runRoute, "v2"))
	waitFor(t, func() bool { return switched.Load() != 0 })
	took := time.Duration(switched.Load() - edited.UnixNano())
	before := total.Load()
	waitFor(t, func() bool { return total.Load() > before+50 })
	close(stop)
	wg.Wait()
	if took > 2*time.Second {
		t.Errorf("the edit took %v to route traffic, want under 2s", took)
	}
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across the edit", n, total.Load())
	}
	t.Logf("edit applied after %v; %d requests, %d failed", took, total.Load(), failures.Load())
}

// The README's first command: the bundled example with its demo
// backends answers /productpage on port 8080.
func TestRunBundledExample(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:19080", "127.0.0.1:15000"} {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			t.Skipf("%s is taken on this machine", addr)
		}
	}
	stdout, _ := startRun(t, "--config", "../../deploy/examples/bookinfo", "--demo-backends", "--access-log", "")
	// The summary is printed in several writes; its last line ends it.
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "Ctrl-C stops.") })
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	found := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "curl -s http://127.0.0.1:8080/productpage") {
			found = true
		}
	}
	if !found {
		t.Errorf("summary lacks the productpage curl:\n%s", stdout.String())
	}
	resp, body := get(t, http.DefaultClient, "http://127.0.0.1:8080/productpage", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Bookstore") {
		t.Errorf("/productpage: %d %.200s", resp.StatusCode, body)
	}
	resp, body = get(t, http.DefaultClient, "http://127.0.0.1:8080/reviews/0", map[string]string{"end-user": "jason"})
	if resp.StatusCode != 200 || resp.Header.Get("x-version") != "v2" {
		t.Errorf("/reviews/0 as jason: %d from %s: %.200s", resp.StatusCode, resp.Header.Get("x-version"), body)
	}
}
