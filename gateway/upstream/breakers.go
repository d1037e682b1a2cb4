package upstream

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

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
	// budget, when set, limits retries in place of maxRetries.
	budget *retryBudget
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
		if rb := th.GetRetryBudget(); rb != nil {
			b, err := compileRetryBudget(p+".retry_budget", rb)
			if err != nil {
				return t, err
			}
			t.budget = b
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
	// starts counts the requests started within a retry budget's
	// budget_interval; nil until a budget with an interval is set.
	starts atomic.Pointer[recentStarts]
}

// setLimits installs a snapshot's thresholds.
func (b *breakers) setLimits(t *thresholds) {
	b.limits.Store(t)
	if t.budget != nil && t.budget.interval > 0 {
		if s := b.starts.Load(); s == nil || s.slot != max(t.budget.interval/16, time.Microsecond) {
			b.starts.Store(newRecentStarts(t.budget.interval, time.Now))
		}
	}
}

// maxRetries is the number of retries allowed in flight now: max_retries,
// or what the retry budget allows for the requests active and pending (or
// started within its interval).
func (b *breakers) maxRetries() int64 {
	t := b.limits.Load()
	if t.budget == nil {
		return t.maxRetries
	}
	if t.budget.interval > 0 {
		if s := b.starts.Load(); s != nil {
			return t.budget.limit(s.total())
		}
	}
	return t.budget.limit(b.requests.Load() + b.pending.Load())
}

// started records a request the cluster accepted, for a budget interval.
func (b *breakers) started() {
	if t := b.limits.Load(); t.budget != nil && t.budget.interval > 0 {
		if s := b.starts.Load(); s != nil {
			s.add()
		}
	}
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
