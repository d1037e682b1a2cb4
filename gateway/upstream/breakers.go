package upstream

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// ErrOverflow is returned when a circuit breaker stops a request:
// too many pending requests, active requests, or connections. The
// router answers 503 with x-envoy-overloaded (flag UO) and does not
// retry it.
var ErrOverflow = errors.New("upstream overflow")

// thresholds are a cluster's circuit breaker limits at the DEFAULT
// routing priority.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/circuit_breaking
type thresholds struct {
	maxConnections int64
	maxPending     int64
	maxRequests    int64
	maxRetries     int64
}

// Envoy's defaults.
var defaultThresholds = thresholds{maxConnections: 1024, maxPending: 1024, maxRequests: 1024, maxRetries: 3}

func compileThresholds(cb *clusterv3.CircuitBreakers) (thresholds, error) {
	t := defaultThresholds
	for i, th := range cb.GetThresholds() {
		if th.GetPriority() != corev3.RoutingPriority_DEFAULT {
			// HIGH priority routes are not distinguished here.
			continue
		}
		p := fmt.Sprintf("circuit_breakers.thresholds[%d]", i)
		if th.GetRetryBudget() != nil {
			return t, fmt.Errorf("%s.retry_budget: retry budgets are not supported; use max_retries", p)
		}
		set := func(dst *int64, v interface{ GetValue() uint32 }, has bool) {
			if has {
				*dst = int64(v.GetValue())
			}
		}
		set(&t.maxConnections, th.GetMaxConnections(), th.GetMaxConnections() != nil)
		set(&t.maxPending, th.GetMaxPendingRequests(), th.GetMaxPendingRequests() != nil)
		set(&t.maxRequests, th.GetMaxRequests(), th.GetMaxRequests() != nil)
		set(&t.maxRetries, th.GetMaxRetries(), th.GetMaxRetries() != nil)
	}
	return t, nil
}

// breakers count a cluster's resources against its thresholds. They
// live in the Manager under the cluster's name, so requests in flight
// on an older snapshot still count against the newer one's limits.
type breakers struct {
	limits      atomic.Pointer[thresholds]
	connections atomic.Int64
	pending     atomic.Int64
	requests    atomic.Int64
	retries     atomic.Int64
}

func newBreakers() *breakers {
	b := &breakers{}
	t := defaultThresholds
	b.limits.Store(&t)
	return b
}

// acquire takes one unit of c if it stays within limit.
func acquire(c *atomic.Int64, limit int64) bool {
	for {
		v := c.Load()
		if v >= limit {
			return false
		}
		if c.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// remaining is limit minus use, never negative, for the remaining_*
// gauges.
func remaining(c *atomic.Int64, limit int64) int64 {
	return max(0, min(limit, math.MaxInt64)-c.Load())
}
