package upstream_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/upstream"
)

// TestLeastRequestPrefersIdle keeps four slow requests on one backend
// and counts where new picks go. Power of two choices over two hosts
// finds the idle one unless both draws hit the busy one: 3/4 of picks.
// Five choices find it in 31 of 32.
func TestLeastRequestPrefersIdle(t *testing.T) {
	for _, tt := range []struct {
		name     string
		choices  uint32
		min, max float64
	}{
		{"two choices", 2, 0.70, 0.80},
		{"five choices", 5, 0.95, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			busy := startBackend(t, backend.Options{Version: "busy"})
			idle := startBackend(t, backend.Options{Version: "idle"})
			_, cl, _ := build(t, cluster([]ep{{addr: busy.Addr()}, {addr: idle.Addr()}}, func(c *clusterv3.Cluster) {
				c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
				c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
					ChoiceCount: wrapperspb.UInt32(tt.choices),
				}}
			}))
			var busyEP *upstream.Endpoint
			for _, e := range cl.Endpoints() {
				if e.Address == busy.Addr() {
					busyEP = e
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			for i := 0; i < 4; i++ {
				go func() {
					defer func() { done <- struct{}{} }()
					req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+busy.Addr()+"/", nil)
					req.Header.Set("x-echo-delay", "10s")
					if resp, err := cl.RoundTrip(busyEP, req, false); err == nil {
						resp.Body.Close()
					}
				}()
			}
			eventually(t, 2*time.Second, "the slow requests never started", func() bool { return busy.Active() == 4 })
			if got := busyEP.ActiveRequests(); got != 4 {
				t.Fatalf("busy endpoint has %d active requests, want 4", got)
			}
			const n = 20000
			share := float64(picks(t, cl, n, nil)[idle.Addr()]) / n
			t.Logf("idle endpoint got %.3f of picks", share)
			if share < tt.min || share > tt.max {
				t.Errorf("idle endpoint got %.3f of picks, want %.2f-%.2f", share, tt.min, tt.max)
			}
			cancel()
			for i := 0; i < 4; i++ {
				<-done
			}
			if got := busyEP.ActiveRequests(); got != 0 {
				t.Errorf("after the requests ended %d are still active", got)
			}
		})
	}
}
