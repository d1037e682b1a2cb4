package backend

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clients are the two ways a gateway reaches a backend: HTTP/1.1, and
// cleartext HTTP/2 with prior knowledge.
func clients() map[string]*http.Client {
	h2c := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	return map[string]*http.Client{
		"HTTP/1.1": {Transport: &http.Transport{}},
		"HTTP/2.0": {Transport: h2c},
	}
}

func get(t *testing.T, c *http.Client, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestControls(t *testing.T) {
	s := start(t, Options{Service: "httpbin", Version: "v1"})
	tests := []struct {
		name       string
		path       string
		header     map[string]string
		wantStatus int
		wantHeader map[string]string
		wantLen    int  // -1: the echo JSON
		wantEcho   bool // body decodes as Echo describing the request
	}{
		{name: "echo", path: "/get?a=b", header: map[string]string{"end-user": "jason"}, wantStatus: 200, wantLen: -1, wantEcho: true},
		{name: "status header", path: "/", header: map[string]string{"x-echo-status": "503"}, wantStatus: 503, wantLen: -1, wantEcho: true},
		{name: "status query", path: "/?status=418", wantStatus: 418, wantLen: -1, wantEcho: true},
		{name: "header wins over query", path: "/?status=500", header: map[string]string{"x-echo-status": "502"}, wantStatus: 502, wantLen: -1, wantEcho: true},
		{name: "no content", path: "/?status=204", wantStatus: 204, wantLen: 0},
		{name: "body size header", path: "/", header: map[string]string{"x-echo-body-size": "65536"}, wantStatus: 200, wantLen: 65536},
		{name: "body size query with status", path: "/?body-size=10&status=500", wantStatus: 500, wantLen: 10},
		{name: "empty body", path: "/?body-size=0", wantStatus: 200, wantLen: 0},
		{name: "response header", path: "/", header: map[string]string{"x-echo-header": "x-canary=yes"}, wantStatus: 200, wantHeader: map[string]string{"x-canary": "yes"}, wantLen: -1, wantEcho: true},
		{name: "response header query", path: "/?header=cache-control=no-store", wantStatus: 200, wantHeader: map[string]string{"cache-control": "no-store"}, wantLen: -1, wantEcho: true},
		{name: "httpbin status", path: "/status/418", wantStatus: 418, wantLen: -1, wantEcho: true},
		{name: "httpbin delay", path: "/delay/0.01", wantStatus: 200, wantLen: -1, wantEcho: true},
		{name: "httpbin bad status", path: "/status/abc", wantStatus: 200, wantLen: -1, wantEcho: true},
		{name: "fail path", path: "/fail", wantStatus: 503, wantLen: -1, wantEcho: true},
		{name: "bad status", path: "/?status=99", wantStatus: 400, wantLen: -1},
		{name: "bad delay", path: "/?delay=soon", wantStatus: 400, wantLen: -1},
		{name: "bad header", path: "/", header: map[string]string{"x-echo-header": "no-equals"}, wantStatus: 400, wantLen: -1},
		{name: "body too large", path: "/?body-size=999999999999", wantStatus: 400, wantLen: -1},
	}
	for proto, c := range clients() {
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				resp, body := get(t, c, s.URL()+tt.path, tt.header)
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
				}
				if resp.Proto != proto {
					t.Errorf("proto %s, want %s", resp.Proto, proto)
				}
				want := map[string]string{"x-service": "httpbin", "x-version": "v1", "server": "waygate-demo"}
				for k, v := range tt.wantHeader {
					want[k] = v
				}
				for k, v := range want {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				if tt.wantLen >= 0 {
					if len(body) != tt.wantLen {
						t.Fatalf("body is %d bytes, want %d", len(body), tt.wantLen)
					}
					for i, b := range body {
						if b != pattern[i%len(pattern)] {
							t.Fatalf("body byte %d is %q, want %q", i, b, pattern[i%len(pattern)])
						}
					}
				}
				if !tt.wantEcho {
					return
				}
				var e Echo
				if err := json.Unmarshal(body, &e); err != nil {
					t.Fatalf("body is not an Echo: %v\n%s", err, body)
				}
				path, query, _ := strings.Cut(tt.path, "?")
				if e.Service != "httpbin" || e.Version != "v1" || e.Method != "GET" || e.Path != path || e.Query != query ||
					e.Host != s.Addr() || e.Proto != proto || e.Status != tt.wantStatus || e.Source == "" {
					t.Errorf("echo %+v does not describe GET %s over %s", e, tt.path, proto)
				}
				for k, v := range tt.header {
					if e.Headers[k] != v {
						t.Errorf("echo header %s = %q, want %q", k, e.Headers[k], v)
					}
				}
			})
		}
	}
}

func TestBodyBytes(t *testing.T) {
	s := start(t, Options{Service: "httpbin", Version: "v1"})
	for proto, c := range clients() {
		t.Run(proto, func(t *testing.T) {
			resp, err := c.Post(s.URL()+"/post", "application/octet-stream", strings.NewReader(strings.Repeat("x", 100000)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e Echo
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if e.BodyBytes != 100000 || e.Method != "POST" {
				t.Errorf("echo %+v, want POST with body_bytes 100000", e)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	s := start(t, Options{Service: "ratings", Version: "v1"})
	for proto, c := range clients() {
		t.Run(proto+"/waits", func(t *testing.T) {
			began := time.Now()
			resp, _ := get(t, c, s.URL()+"/?delay=50ms", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if d := time.Since(began); d < 50*time.Millisecond {
				t.Errorf("answered after %v, before the 50ms delay", d)
			}
		})
		t.Run(proto+"/ends when the client goes away", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/", nil)
			req.Header.Set("x-echo-delay", "1h")
			_, err := c.Do(req)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err %v, want the client's deadline", err)
			}
			waitFor(t, "the handler to end", func() bool { return s.Active() == 0 })
		})
	}
}

// waitFor polls cond: what it waits on happens in another goroutine
// shortly after an event the test cannot synchronize with.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReset(t *testing.T) {
	s := start(t, Options{Service: "reviews", Version: "v1"})
	for proto, c := range clients() {
		for _, how := range []string{"header", "query"} {
			url := s.URL() + "/reviews/0"
			if how == "query" {
				url += "?reset=true"
			}
			t.Run(proto+"/"+how, func(t *testing.T) {
				before := s.Requests()
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if how == "header" {
					req.Header.Set("x-echo-reset", "true")
				}
				resp, err := c.Do(req)
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Fatalf("got a %d response %q, want a transport error", resp.StatusCode, body)
				}
				if got := s.Requests() - before; got != 1 {
					t.Errorf("Requests grew by %d, want 1 (a reset request was still received)", got)
				}
			})
		}
	}
}

func TestHealthAndAdmin(t *testing.T) {
	s := start(t, Options{Service: "details", Version: "v1", Unhealthy: true})
	c := &http.Client{}
	status := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL()+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	steps := []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 503}, // Options.Unhealthy
		{"POST", "/admin/healthy", 200},
		{"GET", "/healthz", 200},
		{"GET", "/admin/unhealthy", 405},
		{"GET", "/healthz", 200},
		{"POST", "/admin/unhealthy", 200},
		{"GET", "/healthz", 503},
		{"POST", "/admin/fail?percent=101", 400},
		{"POST", "/admin/nope", 404},
		{"POST", "/admin/fail?percent=100", 200},
		{"GET", "/details/0", 503},
		{"POST", "/admin/fail?percent=0", 200},
		{"GET", "/details/0", 200},
	}
	for i, st := range steps {
		if got := status(st.method, st.path); got != st.want {
			t.Fatalf("step %d: %s %s = %d, want %d", i, st.method, st.path, got, st.want)
		}
	}
	if got := s.Requests(); got != 2 {
		t.Errorf("Requests = %d, want 2: health checks and admin calls are not counted", got)
	}
}

func TestFailPercent(t *testing.T) {
	tests := []struct {
		percent int
		want    string // one letter per request: F for 503, . for 200
	}{
		{0, ".........."},
		{10, ".........F"},
		{50, ".F.F.F.F.F"},
		{100, "FFFFFFFFFF"},
	}
	for _, tt := range tests {
		s := start(t, Options{Service: "httpbin", Version: "v1", FailPercent: tt.percent})
		var got strings.Builder
		for range 10 {
			resp, _ := get(t, http.DefaultClient, s.URL()+"/get", nil)
			if resp.StatusCode == 503 {
				got.WriteByte('F')
			} else {
				got.WriteByte('.')
			}
		}
		if got.String() != tt.want {
			t.Errorf("FailPercent %d: %s, want %s", tt.percent, got.String(), tt.want)
		}
	}
	if _, err := Start(Options{Service: "x", FailPercent: 200}); err == nil {
		t.Error("FailPercent 200 accepted")
	}
}
