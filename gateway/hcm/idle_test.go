package hcm_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestStreamIdleTimeout checks that stream_idle_timeout ends a request
// to an upstream that does not answer, on a route whose timeout is
// disabled, and leaves alone a stream that keeps moving.
func TestStreamIdleTimeout(t *testing.T) {
	echo := startEcho(t, "echo")
	// trickle sends twenty chunks, 100ms apart: two seconds always active,
	// never idle for the one-second timeout below.
	trickle := startTrickle(t, 20, 100*time.Millisecond)
	noTimeout := func(prefix, cluster string) *routev3.Route {
		r := hcmtest.Prefix(prefix, cluster)
		r.GetRoute().Timeout = durationpb.New(0)
		return r
	}
	routeIdle := func(prefix string, d time.Duration) *routev3.Route {
		r := noTimeout(prefix, "echo")
		r.GetRoute().IdleTimeout = durationpb.New(d)
		return r
	}
	m := hcmtest.HCM(t, hcmtest.Routes(
		noTimeout("/trickle", "trickle"),
		routeIdle("/short-idle", 100*time.Millisecond),
		routeIdle("/no-idle", 0),
		noTimeout("/", "echo"),
	))
	m.StreamIdleTimeout = durationpb.New(time.Second)
	gw := hcmtest.Start(t, hcmtest.Options{
		HCM:      m,
		Clusters: staticClusters([]*clusterSpec{{"echo", echo.Addr()}, {"trickle", trickle}}),
	})

	tests := []struct {
		name     string
		path     string
		hdr      []string
		want     int
		wantBody string
	}{
		{"an upstream that never answers times the stream out", "/", []string{"x-echo-delay", "1h"}, 408, "stream timeout"},
		{"a route's idle_timeout overrides the connection manager's", "/short-idle", []string{"x-echo-delay", "1h"}, 408, "stream timeout"},
		{"a route's idle_timeout of 0 turns it off", "/no-idle", []string{"x-echo-delay", "1500ms"}, 200, ""},
		{"a stream that keeps moving is not idle", "/trickle", nil, 200, strings.Repeat("chunk\n", 20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, hcmtest.Client(), "GET", gw.URL+tt.path, "", tt.hdr...)
			if r.status != tt.want || (tt.wantBody != "" && r.body != tt.wantBody) {
				t.Errorf("got %d %q, want %d %q", r.status, r.body, tt.want, tt.wantBody)
			}
		})
	}
}

func startTrickle(t *testing.T, n int, gap time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := 0; i < n; i++ {
			io.WriteString(w, "chunk\n")
			rc.Flush()
			time.Sleep(gap)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
