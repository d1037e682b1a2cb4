package client

import (
	"math/rand/v2"
	"time"
)

// Default reconnect timing. Envoy uses the same 500ms..30s envelope for its
// xDS gRPC retries, so a fleet of Waygate pods reconnects to a restarted
// istiod no more aggressively than a fleet of Envoys would.
const (
	DefaultBackoffInitial = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
)

// backoff computes jittered exponential delays. Jitter spreads the reconnect
// storm that follows a control plane restart.
type backoff struct {
	initial, max time.Duration
}

// delay returns the wait before attempt n (0-based): a random duration in
// [d/2, d] where d = initial*2^n capped at max.
func (b backoff) delay(n int) time.Duration {
	d := b.initial
	for i := 0; i < n && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
