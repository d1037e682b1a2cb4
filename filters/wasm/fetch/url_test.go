package fetch

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHTTPS fetches a module from a TLS server: verified against the
// roots the options trust, refused at once (no retries) when its
// certificate is not trusted, accepted from a host listed as insecure.
func TestHTTPS(t *testing.T) {
	mod := module("tls")
	srv := httptest.NewTLSServer(newFileServer(mod))
	t.Cleanup(srv.Close)
	trusting := srv.Client().Transport.(*http.Transport)
	host := strings.TrimPrefix(srv.URL, "https://")
	tests := []struct {
		name string
		opts Options
		err  string
	}{
		{"trusted root", Options{Transport: trusting}, ""},
		{"untrusted", Options{}, "certificate"},
		{"insecure host:port", Options{InsecureHosts: []string{host}}, ""},
		{"insecure host", Options{InsecureHosts: []string{"127.0.0.1"}}, ""},
		{"insecure any", Options{InsecureHosts: []string{"*"}}, ""},
		{"other host insecure", Options{InsecureHosts: []string{"example.com"}}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Dir = t.TempDir()
			b, err := New(tt.opts).Get(context.Background(), Request{URI: srv.URL + "/plugin.wasm", SHA256: sha256Hex(mod)})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "(1 attempts)") {
					t.Fatalf("err = %v, want %q after one attempt", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, mod) {
				t.Fatalf("got %d bytes, want the module's %d", len(b), len(mod))
			}
		})
	}
}

// TestChecksum refuses a module whose sha256 is not the one asked
// for, naming both; accepts any case and istiod's "nil".
func TestChecksum(t *testing.T) {
	mod := module("sum")
	srv := httptest.NewServer(newFileServer(mod))
	t.Cleanup(srv.Close)
	good := sha256Hex(mod)
	bad := strings.Repeat("ab", 32)
	tests := []struct {
		sha, err string
	}{
		{good, ""},
		{strings.ToUpper(good), ""},
		{"sha256:" + good, ""},
		{"", ""},
		{"nil", ""},
		{bad, "has sha256 " + good + ", want " + bad},
		{"abc", "not a sha256 digest"},
	}
	for _, tt := range tests {
		t.Run(tt.sha, func(t *testing.T) {
			_, err := New(Options{Dir: t.TempDir()}).Get(context.Background(), Request{URI: srv.URL + "/plugin.wasm", SHA256: tt.sha})
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *ChecksumError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want a checksum error with %q", err, tt.err)
			}
		})
	}
}

// TestRetries retries 5xx answers with backoff, not 404 or 501, and
// gives up with the last status.
func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		fail     func(n int64) int
		attempts int
		hits     int64
		err      string
	}{
		{"two 503 then ok", func(n int64) int { return map[int64]int{1: 503, 2: 503}[n] }, 5, 3, ""},
		{"always 500", func(int64) int { return 500 }, 3, 3, "status 500 (3 attempts)"},
		{"404 not retried", func(int64) int { return 404 }, 5, 1, "status 404 (1 attempts)"},
		{"501 not retried", func(int64) int { return 501 }, 5, 1, "status 501"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFileServer(module("retry"))
			fs.fail = tt.fail
			srv := httptest.NewServer(fs)
			t.Cleanup(srv.Close)
			_, err := New(Options{Dir: t.TempDir()}).Get(context.Background(), Request{
				URI: srv.URL + "/plugin.wasm", Attempts: tt.attempts, Backoff: time.Millisecond,
			})
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if got := fs.count.Load(); got != tt.hits {
				t.Errorf("server saw %d requests, want %d", got, tt.hits)
			}
		})
	}
}

// TestTimeout returns by the request's timeout from a server that
// never answers.
func TestTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	start := time.Now()
	_, err := New(Options{Dir: t.TempDir()}).Get(context.Background(), Request{URI: srv.URL + "/plugin.wasm", Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("err = %v, want a deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %v, want about the 300ms timeout", d)
	}
}

// TestLimitsAndFormat refuses a module past the size limit and a body
// that is not Wasm; takes a module out of tar.gz.
func TestLimitsAndFormat(t *testing.T) {
	mod := module("boxed")
	tests := []struct {
		name string
		body []byte
		max  int64
		err  string
	}{
		{"too large", mod, 10, "larger than 10 bytes"},
		{"not wasm", []byte("<html>hello</html>"), 0, "not a Wasm module"},
		{"tar.gz", tarGz(t, map[string][]byte{"plugin.wasm": mod}), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(newFileServer(tt.body))
			t.Cleanup(srv.Close)
			b, err := New(Options{Dir: t.TempDir(), MaxSize: tt.max}).Get(context.Background(), Request{URI: srv.URL + "/plugin.wasm"})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !bytes.Equal(b, mod) {
				t.Fatalf("got %d bytes, %v; want the module", len(b), err)
			}
		})
	}
}

// TestURLCache fetches a URL once: again from the same fetcher, from a
// new fetcher on the same directory (a restart), and from concurrent
// callers.
func TestURLCache(t *testing.T) {
	mod := module("cached")
	fs := newFileServer(mod)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		fs.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(slow)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	uri := srv.URL + "/plugin.wasm"
	f := New(Options{Dir: dir})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { get(t, f, Request{URI: uri, SHA256: sha256Hex(mod)}) })
	}
	wg.Wait()
	if n := fs.count.Load(); n != 1 {
		t.Fatalf("8 concurrent loads made %d requests, want 1", n)
	}
	get(t, f, Request{URI: uri})
	restarted := New(Options{Dir: dir})
	get(t, restarted, Request{URI: uri, SHA256: sha256Hex(mod)})
	if b := get(t, restarted, Request{URI: uri, Policy: PullIfNotPresent}); !bytes.Equal(b, mod) {
		t.Fatal("cached module differs")
	}
	if n := fs.count.Load(); n != 1 {
		t.Fatalf("cached loads made %d requests, want 1", n)
	}
	// A changed module under the same URL, asked for by its new sha256,
	// is fetched.
	mod2 := module("changed")
	fs.mod.Store(&mod2)
	if b := get(t, restarted, Request{URI: uri, SHA256: sha256Hex(mod2)}); !bytes.Equal(b, mod2) {
		t.Fatal("got the old module")
	}
	if n := fs.count.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}
