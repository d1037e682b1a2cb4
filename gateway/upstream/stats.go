package upstream

import (
	"strconv"
	"sync"
	"time"

	"github.com/waygate/waygate/gateway/stats"
)

// ClusterStats are a cluster's request stats, named as Envoy's
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/upstream/cluster_manager/cluster_stats).
// They live in the store, so they survive snapshots.
type ClusterStats struct {
	scope          *stats.Scope
	RqTotal        *stats.Counter
	RqTimeout      *stats.Counter
	RqRetry        *stats.Counter
	RqRetrySuccess *stats.Counter
	CxConnectFail  *stats.Counter
	RqTime         *stats.Histogram
	byClass        [6]*stats.Counter
	codes          sync.Map // int -> *stats.Counter
}

func newClusterStats(st *stats.Store, name string) *ClusterStats {
	if st == nil {
		return nil
	}
	sc := st.Scope("cluster."+name+".", stats.Tag{Name: stats.TagClusterName, Value: name})
	cs := &ClusterStats{
		scope:          sc,
		RqTotal:        sc.Counter("upstream_rq_total"),
		RqTimeout:      sc.Counter("upstream_rq_timeout"),
		RqRetry:        sc.Counter("upstream_rq_retry"),
		RqRetrySuccess: sc.Counter("upstream_rq_retry_success"),
		CxConnectFail:  sc.Counter("upstream_cx_connect_fail"),
		RqTime:         sc.Histogram("upstream_rq_time"),
	}
	for i := 1; i <= 5; i++ {
		cs.byClass[i] = sc.Counter("upstream_rq_" + strconv.Itoa(i) + "xx")
	}
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

// Stat selectors for Count.
func RqTotal(s *ClusterStats) *stats.Counter        { return s.RqTotal }
func RqTimeout(s *ClusterStats) *stats.Counter      { return s.RqTimeout }
func RqRetry(s *ClusterStats) *stats.Counter        { return s.RqRetry }
func RqRetrySuccess(s *ClusterStats) *stats.Counter { return s.RqRetrySuccess }
func CxConnectFail(s *ClusterStats) *stats.Counter  { return s.CxConnectFail }
