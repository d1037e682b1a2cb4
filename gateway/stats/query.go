package stats

import "regexp"

// Option narrows what an exposition writes, after Envoy's /stats query
// parameters.
type Option func(*query)

// UsedOnly keeps the stats that were ever updated, as ?usedonly: counters
// above zero, histograms with values, gauges that are non-zero or read
// on demand (GaugeFunc).
func UsedOnly() Option { return func(q *query) { q.usedOnly = true } }

type query struct {
	filter   *regexp.Regexp
	usedOnly bool
}

func newQuery(filter *regexp.Regexp, opts []Option) query {
	q := query{filter: filter}
	for _, o := range opts {
		o(&q)
	}
	return q
}

func (q query) match(name string) bool { return q.filter == nil || q.filter.MatchString(name) }

func (q query) counter(c *Counter) bool { return q.match(c.name) && (!q.usedOnly || c.Value() != 0) }

func (q query) gauge(g *Gauge) bool { return q.match(g.name) && (!q.usedOnly || g.used()) }

func (q query) histogram(h *Histogram) bool {
	return q.match(h.name) && (!q.usedOnly || h.count.Load() != 0)
}
