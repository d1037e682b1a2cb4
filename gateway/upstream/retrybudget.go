package upstream

import (
	"fmt"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// retryBudget is a circuit breaker's retry_budget: the retries a
// cluster may have in flight are a share of its active and pending
// requests (or, with an interval, of the requests started within it),
// never fewer than a floor. It replaces max_retries when set.
//
// See https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/cluster/v3/circuit_breaker.proto#config-cluster-v3-circuitbreakers-thresholds-retrybudget
type retryBudget struct {
	percent  float64 // of the requests counted, 0 to 100
	min      int64   // min_retry_concurrency
	interval time.Duration
}

// Envoy's defaults for a retry_budget that leaves its fields unset.
const (
	defaultBudgetPercent  = 20
	defaultMinConcurrency = 3
)

func compileRetryBudget(p string, rb *clusterv3.CircuitBreakers_Thresholds_RetryBudget) (*retryBudget, error) {
	b := &retryBudget{percent: defaultBudgetPercent, min: defaultMinConcurrency}
	if v := rb.GetBudgetPercent(); v != nil {
		if v.GetValue() < 0 || v.GetValue() > 100 {
			return nil, fmt.Errorf("%s.budget_percent: %v is not a percentage between 0 and 100", p, v.GetValue())
		}
		b.percent = v.GetValue()
	}
	if v := rb.GetMinRetryConcurrency(); v != nil {
		b.min = int64(v.GetValue())
	}
	if d := rb.GetBudgetInterval(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return nil, fmt.Errorf("%s.budget_interval: not a non-negative duration", p)
		}
		b.interval = d.AsDuration()
	}
	return b, nil
}

// limit is the retries allowed in flight when base requests count
// towards the budget.
func (b *retryBudget) limit(base int64) int64 {
	return max(b.min, int64(b.percent/100*float64(base)))
}

// recentStarts counts the requests a cluster started within the last
// interval, for a retry budget with budget_interval: in slots of a
// sixteenth of the interval, so a request is forgotten between 15/16
// and one interval after it started.
type recentStarts struct {
	mu     sync.Mutex
	slot   time.Duration
	counts [16]int64
	head   int64 // index of the slot now counting, in slots since start
	now    func() time.Time
	start  time.Time // with time.Now, a monotonic reading
}

func newRecentStarts(interval time.Duration, now func() time.Time) *recentStarts {
	return &recentStarts{slot: max(interval/16, time.Microsecond), now: now, start: now()}
}

// advance moves the window to the present, clearing the slots it leaves
// behind. r.mu is held.
func (r *recentStarts) advance() {
	cur := int64(r.now().Sub(r.start) / r.slot)
	if cur <= r.head {
		return
	}
	for i := r.head + 1; i <= cur && i <= r.head+int64(len(r.counts)); i++ {
		r.counts[i%int64(len(r.counts))] = 0
	}
	r.head = cur
}

// add counts one request started now.
func (r *recentStarts) add() {
	r.mu.Lock()
	r.advance()
	r.counts[r.head%int64(len(r.counts))]++
	r.mu.Unlock()
}

// total is the requests started within the window.
func (r *recentStarts) total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance()
	var n int64
	for _, c := range r.counts {
		n += c
	}
	return n
}
