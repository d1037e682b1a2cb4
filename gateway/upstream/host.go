package upstream

import (
	"sync"
	"sync/atomic"
	"time"
)

// host is the state of one upstream address that must outlive a
// snapshot: its active requests (least-request balancing), its
// HTTP/1.1 connections, what active health checking and outlier
// detection concluded about it. The Manager keeps one per cluster and
// address; every Endpoint compiled for that address points to it.
type host struct {
	addr string
	// added is when the host joined the cluster, for slow start.
	added time.Time
	// active counts requests sent and not yet finished, as Envoy's
	// per-host rq_active.
	active atomic.Int64
	// hcFailed is set while active health checking says the host is
	// unhealthy (Envoy's FAILED_ACTIVE_HC flag).
	hcFailed atomic.Bool
	// ejected is set while outlier detection keeps the host out
	// (FAILED_OUTLIER_CHECK).
	ejected atomic.Bool

	pool *connPool

	// mu guards the outlier detection counters.
	mu      sync.Mutex
	outlier outlierHost
}

// outlierHost is a host's outlier detection record.
type outlierHost struct {
	consecutive5xx     uint32
	consecutiveGateway uint32
	// consecutiveLocal counts local-origin failures in a row, when the
	// detector splits them from the upstream's 5xx.
	consecutiveLocal uint32
	// successes and failures within the current interval, for the
	// success rate and failure percentage checks.
	successes, failures uint64
	// backoff multiplies base_ejection_time for the next ejection.
	backoff       uint32
	ejectedAt     time.Time
	lastUnejected time.Time
	timesEjected  uint64
}

func newHost(addr string, b *breakers, s poolSettings, st *ClusterStats, dial dialFunc) *host {
	h := &host{addr: addr, added: time.Now()}
	h.pool = newConnPool(addr, b, s, st, dial)
	h.pool.host = h
	return h
}

// requestDone ends a request's accounting.
func (h *host) requestDone(b *breakers) {
	h.active.Add(-1)
	b.requests.Add(-1)
}

// available says whether the host may be picked outside panic mode.
func (h *host) available() bool { return !h.hcFailed.Load() && !h.ejected.Load() }
