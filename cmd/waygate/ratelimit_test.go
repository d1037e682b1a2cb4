package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waygate/waygate/gateway/rls/rlstest"
)

// rateLimitDir writes a config directory for `waygate run`: a Gateway on
// port routing every request to backend, and policy.
func rateLimitDir(t *testing.T, port int, backend, policy string) string {
	t.Helper()
	_, p, _ := net.SplitHostPort(backend)
	bp, _ := strconv.Atoi(p)
	dir := t.TempDir()
	for name, body := range map[string]string{
		"gateway.yaml": fmt.Sprintf(runGateway, port, bp, bp),
		"route.yaml":   fmt.Sprintf(runRoute, "v1"),
		"policy.yaml":  policy,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startRateLimitedRun starts `waygate run` on dir and waits until it
// serves; it returns the admin address.
func startRateLimitedRun(t *testing.T, dir string) string {
	t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stdout, _ := startRun(t, "--config", dir, "--admin", admin, "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })
	return admin
}

func do(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const localPolicy = `
apiVersion: waygate.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: per-client, namespace: istio-system}
spec:
  rules:
  - name: five-a-minute
    by: clientIP
    local: {requests: 5, per: minute}
`

// A local limit of 5 a minute per client address: exactly five 200s,
// then 429 local_rate_limited, each with the x-ratelimit headers.
func TestRunLocalRateLimit(t *testing.T) {
	b := startBackend(t, "echo", "v1")
	port := freePort(t)
	dir := rateLimitDir(t, port, b.Addr(), localPolicy)
	admin := startRateLimitedRun(t, dir)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	c := &http.Client{Timeout: 5 * time.Second}
	for i := range 7 {
		resp, body := do(t, c, url)
		want := 200
		if i >= 5 {
			want = 429
		}
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d %q, want %d", i+1, resp.StatusCode, body, want)
		}
		if want == 429 && body != "local_rate_limited" {
			t.Errorf("request %d: body %q", i+1, body)
		}
		remaining := max(4-i, 0)
		if resp.Header.Get("X-Ratelimit-Limit") != "5" || resp.Header.Get("X-Ratelimit-Remaining") != strconv.Itoa(remaining) {
			t.Errorf("request %d: x-ratelimit-limit %q remaining %q, want 5 and %d", i+1,
				resp.Header.Get("X-Ratelimit-Limit"), resp.Header.Get("X-Ratelimit-Remaining"), remaining)
		}
		if reset, err := strconv.Atoi(resp.Header.Get("X-Ratelimit-Reset")); err != nil || reset < 1 || reset > 60 {
			t.Errorf("request %d: x-ratelimit-reset %q", i+1, resp.Header.Get("X-Ratelimit-Reset"))
		}
	}
	// An unrelated edit pushes the route table again: the client's
	// bucket stays empty.
	edited := fmt.Sprintf(runRoute, "v1") + "    headers: {response: {set: {x-edited: \"yes\"}}}\n"
	if err := os.WriteFile(filepath.Join(dir, "route.yaml"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, dump := do(t, c, "http://"+admin+"/config_dump")
		return strings.Contains(dump, "x-edited")
	})
	if resp, _ := do(t, c, url); resp.StatusCode != 429 {
		t.Errorf("after a route push: %d, want 429: the push refilled the bucket", resp.StatusCode)
	}
	_, stats := do(t, c, "http://"+admin+"/stats?filter=http_local_rate_limit")
	for _, want := range []string{"http_local_rate_limiter.http_local_rate_limit.ok: 5", "http_local_rate_limiter.http_local_rate_limit.enforced: 3"} {
		if !strings.Contains(stats, want) {
			t.Errorf("stats lack %q:\n%s", want, stats)
		}
	}
}

const globalPolicy = `
apiVersion: waygate.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: shared, namespace: istio-system}
spec:
  rateLimitService: %s
  timeout: 2s
  failureModeDeny: true
  rules:
  - name: six-an-hour
    by: clientIP
    global: {requests: 6, per: hour}
`

// A global limit through `waygate ratelimit-server` and a real Redis,
// shared by two `waygate run` gateways: requests spread over both get
// one combined limit of six.
func TestRunGlobalRateLimitSharedByTwoGateways(t *testing.T) {
	redisAddr := rlstest.StartRedis(t)
	rlsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	policy := fmt.Sprintf(globalPolicy, rlsAddr)
	policyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(policyDir, "policy.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	startRateLimitServer(t, "--redis", redisAddr, "--policies", policyDir, "--listen", rlsAddr)

	b := startBackend(t, "echo", "v1")
	var urls []string
	for range 2 {
		port := freePort(t)
		startRateLimitedRun(t, rateLimitDir(t, port, b.Addr(), policy))
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d/", port))
	}
	c := &http.Client{Timeout: 5 * time.Second}
	ok, limited := 0, 0
	for i := range 12 {
		resp, body := do(t, c, urls[i%2])
		switch resp.StatusCode {
		case 200:
			ok++
			if limited > 0 {
				t.Errorf("request %d passed after a 429", i+1)
			}
		case 429:
			limited++
			if resp.Header.Get("X-Envoy-Ratelimited") != "true" {
				t.Errorf("request %d: 429 without x-envoy-ratelimited", i+1)
			}
		default:
			t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, body)
		}
		if !strings.HasPrefix(resp.Header.Get("X-Ratelimit-Limit"), "6, 6;w=3600") {
			t.Errorf("request %d: x-ratelimit-limit %q", i+1, resp.Header.Get("X-Ratelimit-Limit"))
		}
	}
	if ok != 6 || limited != 6 {
		t.Errorf("%d passed and %d were limited across two gateways, want 6 and 6", ok, limited)
	}
}

// startRateLimitServer runs `waygate ratelimit-server` and waits until
// it accepts connections.
func startRateLimitServer(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"ratelimit-server"}, args...)...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("ratelimit-server:\n%s", out.String())
		}
	})
	waitFor(t, func() bool { return strings.Contains(out.String(), "listening on") })
}

const headerPolicy = `
apiVersion: waygate.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: per-key, namespace: istio-system}
spec:
  match: {pathPrefix: /api}
  rules:
  - by: header
    header: x-api-key
    local: {requests: 50, per: hour}
`

// Many concurrent connections with one API key get exactly the key's 50
// requests through, shared across connections; requests outside the
// path prefix are not counted.
func TestRunLocalRateLimitUnderConcurrency(t *testing.T) {
	b := startBackend(t, "echo", "v1")
	port := freePort(t)
	startRateLimitedRun(t, rateLimitDir(t, port, b.Addr(), headerPolicy))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	const workers, each = 16, 10
	codes := make(chan int, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One connection per worker.
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			for range each {
				req, _ := http.NewRequest(http.MethodGet, base+"/api/items", nil)
				req.Header.Set("X-Api-Key", "k1")
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes <- resp.StatusCode
			}
		}()
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[200] != 50 || n[429] != workers*each-50 {
		t.Errorf("statuses %v, want exactly 50 × 200 and %d × 429", n, workers*each-50)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, base+"/other", nil)
	req.Header.Set("X-Api-Key", "k1")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("outside the path prefix: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	req, _ = http.NewRequest(http.MethodGet, base+"/api/items", nil)
	req.Header.Set("X-Api-Key", "k2")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("another key: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
