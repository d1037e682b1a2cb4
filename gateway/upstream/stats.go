package upstream

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waygate/waygate/gateway/stats"
)

// ClusterStats are a cluster's stats, named as Envoy's
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/upstream/cluster_manager/cluster_stats).
// They live in the store, so they survive snapshots.
type ClusterStats struct {
	scope             *stats.Scope
	RqTotal           *stats.Counter
	RqTimeout         *stats.Counter
	RqRetry           *stats.Counter
	RqRetrySuccess    *stats.Counter
	RqRetryOverflow   *stats.Counter
	RqPendingOverflow *stats.Counter
	CxTotal           *stats.Counter
	CxOverflow        *stats.Counter
	CxConnectFail     *stats.Counter
	RqTime            *stats.Histogram

	MembershipTotal   *stats.Gauge
	MembershipHealthy *stats.Gauge

	// Outlier detection, under outlier_detection.
	EjectionsActive        *stats.Gauge
	EjectionsEnforcedTotal *stats.Counter
	EjectionsOverflow      *stats.Counter
	ejectionsEnforced      [ejectKinds]*stats.Counter
	ejectionsDetected      [ejectKinds]*stats.Counter

	// Active health checking, under health_check.
	HCAttempt *stats.Counter
	HCSuccess *stats.Counter
	HCFailure *stats.Counter

	byClass [6]*stats.Counter
	codes   sync.Map // int -> *stats.Counter
}

func newClusterStats(st *stats.Store, name string, b *breakers) *ClusterStats {
	if st == nil {
		return nil
	}
	sc := st.Scope("cluster."+name+".", stats.Tag{Name: stats.TagClusterName, Value: name})
	cs := &ClusterStats{
		scope:                  sc,
		RqTotal:                sc.Counter("upstream_rq_total"),
		RqTimeout:              sc.Counter("upstream_rq_timeout"),
		RqRetry:                sc.Counter("upstream_rq_retry"),
		RqRetrySuccess:         sc.Counter("upstream_rq_retry_success"),
		RqRetryOverflow:        sc.Counter("upstream_rq_retry_overflow"),
		RqPendingOverflow:      sc.Counter("upstream_rq_pending_overflow"),
		CxTotal:                sc.Counter("upstream_cx_total"),
		CxOverflow:             sc.Counter("upstream_cx_overflow"),
		CxConnectFail:          sc.Counter("upstream_cx_connect_fail"),
		RqTime:                 sc.Histogram("upstream_rq_time"),
		MembershipTotal:        sc.Gauge("membership_total"),
		MembershipHealthy:      sc.Gauge("membership_healthy"),
		EjectionsActive:        sc.Gauge("outlier_detection.ejections_active"),
		EjectionsEnforcedTotal: sc.Counter("outlier_detection.ejections_enforced_total"),
		EjectionsOverflow:      sc.Counter("outlier_detection.ejections_overflow"),
		HCAttempt:              sc.Counter("health_check.attempt"),
		HCSuccess:              sc.Counter("health_check.success"),
		HCFailure:              sc.Counter("health_check.failure"),
	}
	for k := ejectKind(0); k < ejectKinds; k++ {
		cs.ejectionsEnforced[k] = sc.Counter("outlier_detection.ejections_enforced_" + k.String())
		cs.ejectionsDetected[k] = sc.Counter("outlier_detection.ejections_detected_" + k.String())
	}
	for i := 1; i <= 5; i++ {
		cs.byClass[i] = sc.Counter("upstream_rq_" + strconv.Itoa(i) + "xx")
	}
	// Circuit breaker state, read when stats are.
	open := func(c *atomic.Int64, limit func(*thresholds) int64) func() int64 {
		return func() int64 {
			if c.Load() >= limit(b.limits.Load()) {
				return 1
			}
			return 0
		}
	}
	rem := func(c *atomic.Int64, limit func(*thresholds) int64) func() int64 {
		return func() int64 { return remaining(c, limit(b.limits.Load())) }
	}
	cx := func(t *thresholds) int64 { return t.maxConnections }
	pend := func(t *thresholds) int64 { return t.maxPending }
	rq := func(t *thresholds) int64 { return t.maxRequests }
	retry := func(*thresholds) int64 { return b.maxRetries() }
	sc.GaugeFunc("circuit_breakers.default.cx_open", open(&b.connections, cx))
	sc.GaugeFunc("circuit_breakers.default.rq_pending_open", open(&b.pending, pend))
	sc.GaugeFunc("circuit_breakers.default.rq_open", open(&b.requests, rq))
	sc.GaugeFunc("circuit_breakers.default.rq_retry_open", open(&b.retries, retry))
	sc.GaugeFunc("circuit_breakers.default.remaining_cx", rem(&b.connections, cx))
	sc.GaugeFunc("circuit_breakers.default.remaining_pending", rem(&b.pending, pend))
	sc.GaugeFunc("circuit_breakers.default.remaining_rq", rem(&b.requests, rq))
	sc.GaugeFunc("circuit_breakers.default.remaining_retries", rem(&b.retries, retry))
	sc.GaugeFunc("upstream_cx_active", func() int64 { return b.connections.Load() })
	sc.GaugeFunc("upstream_rq_pending_active", func() int64 { return b.pending.Load() })
	sc.GaugeFunc("upstream_rq_active", func() int64 { return b.requests.Load() })
	return cs
}

// Response counts a response from the cluster with its status and time.
func (s *ClusterStats) Response(status int, d time.Duration) {
	if s == nil {
		return
	}
	if c := status / 100; c >= 1 && c <= 5 {
		s.byClass[c].Inc()
	}
	v, ok := s.codes.Load(status)
	if !ok {
		v, _ = s.codes.LoadOrStore(status, s.scope.Counter("upstream_rq_"+strconv.Itoa(status)))
	}
	v.(*stats.Counter).Inc()
	s.RqTime.Record(d)
}

// Count increments the counter pick selects, when stats are kept.
func (s *ClusterStats) Count(pick func(*ClusterStats) *stats.Counter) {
	if s != nil {
		pick(s).Inc()
	}
}

func (s *ClusterStats) membership(t *table) {
	if s == nil {
		return
	}
	healthy := 0
	for _, e := range t.all {
		if e.Available() {
			healthy++
		}
	}
	s.MembershipTotal.Set(int64(len(t.all)))
	s.MembershipHealthy.Set(int64(healthy))
}

func (s *ClusterStats) ejection(k ejectKind, enforced bool) {
	if s == nil {
		return
	}
	s.ejectionsDetected[k].Inc()
	if enforced {
		s.ejectionsEnforced[k].Inc()
		s.EjectionsEnforcedTotal.Inc()
	}
}

// Stat selectors for Count.
func RqTotal(s *ClusterStats) *stats.Counter           { return s.RqTotal }
func RqTimeout(s *ClusterStats) *stats.Counter         { return s.RqTimeout }
func RqRetry(s *ClusterStats) *stats.Counter           { return s.RqRetry }
func RqRetrySuccess(s *ClusterStats) *stats.Counter    { return s.RqRetrySuccess }
func RqRetryOverflow(s *ClusterStats) *stats.Counter   { return s.RqRetryOverflow }
func RqPendingOverflow(s *ClusterStats) *stats.Counter { return s.RqPendingOverflow }
func CxTotal(s *ClusterStats) *stats.Counter           { return s.CxTotal }
func CxOverflow(s *ClusterStats) *stats.Counter        { return s.CxOverflow }
func CxConnectFail(s *ClusterStats) *stats.Counter     { return s.CxConnectFail }
func EjectionsOverflow(s *ClusterStats) *stats.Counter { return s.EjectionsOverflow }
func HCAttempt(s *ClusterStats) *stats.Counter         { return s.HCAttempt }
func HCSuccess(s *ClusterStats) *stats.Counter         { return s.HCSuccess }
func HCFailure(s *ClusterStats) *stats.Counter         { return s.HCFailure }
