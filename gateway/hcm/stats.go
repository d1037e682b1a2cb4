package hcm

import (
	"time"

	"github.com/waygate/waygate/gateway/stats"
)

// httpStats are the connection manager's stats, named as Envoy's
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/stats).
type httpStats struct {
	scope   *stats.Scope
	total   *stats.Counter
	active  *stats.Gauge
	byClass [6]*stats.Counter // index: status/100
	rqTime  *stats.Histogram
}

func newHTTPStats(st *stats.Store, prefix string) *httpStats {
	if st == nil {
		return nil
	}
	sc := st.Scope("http."+prefix+".", stats.Tag{Name: stats.TagHTTPConnManagerPrefix, Value: prefix})
	h := &httpStats{
		scope:  sc,
		total:  sc.Counter("downstream_rq_total"),
		active: sc.Gauge("downstream_rq_active"),
		rqTime: sc.Histogram("downstream_rq_time"),
	}
	for i, n := range []string{"", "downstream_rq_1xx", "downstream_rq_2xx", "downstream_rq_3xx", "downstream_rq_4xx", "downstream_rq_5xx"} {
		if n != "" {
			h.byClass[i] = sc.Counter(n)
		}
	}
	return h
}

func (h *httpStats) begin() {
	if h == nil {
		return
	}
	h.total.Inc()
	h.active.Inc()
}

func (h *httpStats) end(status int, d time.Duration) {
	if h == nil {
		return
	}
	h.active.Dec()
	if c := status / 100; c >= 1 && c <= 5 {
		h.byClass[c].Inc()
	}
	h.rqTime.Record(d)
}
