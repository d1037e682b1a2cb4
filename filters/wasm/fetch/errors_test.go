package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestNotFetched tells a module that could not be fetched (a missing
// file or image, a failing server, a timeout, a digest that does not
// match what came) from a request that is wrong in itself (a bad URL or
// sha256, an unusable pull secret), which callers report as config
// errors.
func TestNotFetched(t *testing.T) {
	mod := module("err")
	files := newFileServer(mod)
	srv := httptest.NewServer(files)
	t.Cleanup(srv.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	reg := startRegistry(t, "", "")
	sum := sha256Hex(mod)
	tests := []struct {
		name       string
		r          Request
		notFetched bool
		checksum   bool // a *ChecksumError is in the chain
	}{
		{"not found", Request{URI: srv.URL + "/missing.wasm", SHA256: sum}, true, false},
		{"server error", Request{URI: failing.URL + "/plugin.wasm", SHA256: sum, Attempts: 1}, true, false},
		{"timeout", Request{URI: slow.URL + "/plugin.wasm", SHA256: sum, Timeout: 100 * time.Millisecond}, true, false},
		{"refused", Request{URI: "http://127.0.0.1:1/plugin.wasm", SHA256: sum, Attempts: 1}, true, false},
		{"image missing", Request{URI: "oci://" + reg.host + "/plugins/missing:v1", Attempts: 1}, true, false},
		{"digest mismatch", Request{URI: srv.URL + "/plugin.wasm", SHA256: strings.Repeat("0", 64)}, true, true},
		{"bad sha256", Request{URI: srv.URL + "/plugin.wasm", SHA256: "xyz"}, false, true},
		{"bad scheme", Request{URI: "ftp://example.com/x.wasm"}, false, false},
		{"empty pull secret", Request{URI: "oci://" + reg.host + "/p:v1", PullSecret: []byte(" ")}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{Dir: t.TempDir()}).Get(context.Background(), tt.r)
			if err == nil {
				t.Fatal("fetched")
			}
			if got := errors.Is(err, ErrNotFetched); got != tt.notFetched {
				t.Errorf("errors.Is(%v, ErrNotFetched) = %v, want %v", err, got, tt.notFetched)
			}
			var ce *ChecksumError
			if got := errors.As(err, &ce); got != tt.checksum {
				t.Errorf("errors.As(%v, *ChecksumError) = %v, want %v", err, got, tt.checksum)
			}
			var fe *Error
			if errors.As(err, &fe) && (fe.URI != tt.r.URI || fe.Error() != fe.Err.Error()) {
				t.Errorf("Error{URI: %q} reads %q, want the URI asked for and the cause's text", fe.URI, fe.Error())
			}
		})
	}
}
