package fetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestBlockedAddresses(t *testing.T) {
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"169.254.169.254", true},
		{"169.254.1.1", true},
		{"fe80::1", true},
		{"::ffff:169.254.169.254", true},
		{"100.100.100.200", true},
		{"fd00:ec2::254", true},
		{"127.0.0.1", false},
		{"10.0.0.8", false},
		{"192.168.1.1", false},
		{"8.8.8.8", false},
		{"::1", false},
	}
	for _, tt := range tests {
		if err := blocked(netip.MustParseAddr(tt.addr)); (err != nil) != tt.blocked {
			t.Errorf("blocked(%s) = %v, want blocked %v", tt.addr, err, tt.blocked)
		}
	}
}

// TestRedirectToMetadata refuses to follow a module URL redirected to
// the instance metadata service.
func TestRedirectToMetadata(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/latest/meta-data/", http.StatusFound))
	t.Cleanup(srv.Close)
	_, err := New(Options{Dir: t.TempDir()}).Get(context.Background(), Request{URI: srv.URL + "/plugin.wasm", Attempts: 1})
	if err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Fatalf("err = %v, want the link-local address refused", err)
	}
}
