package stats

import (
	"io"
	"regexp"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// promDesc builds the Prometheus description of a stat. The help text is
// the tag-extracted Envoy name, the same for every stat of one family,
// which client_golang requires.
func (m *meta) promDesc() (*prometheus.Desc, []string) {
	names := make([]string, len(m.tags))
	values := make([]string, len(m.tags))
	for i, t := range m.tags {
		names[i], values[i] = sanitize(t.Name), t.Value
	}
	return prometheus.NewDesc(promName(m.extracted), m.extracted, names, nil), values
}

// collector exports the store's stats. It describes nothing up front
// (an "unchecked" collector) because stats appear at any time.
type collector struct {
	s *Store
	q query
}

func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	send := func(m prometheus.Metric, err error, d *prometheus.Desc) {
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	c.s.counters.Range(func(_, v any) bool {
		s := v.(*Counter)
		if c.q.counter(s) {
			d, lv := s.promDesc()
			m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(s.Value()), lv...)
			send(m, err, d)
		}
		return true
	})
	c.s.gauges.Range(func(_, v any) bool {
		s := v.(*Gauge)
		if c.q.gauge(s) {
			d, lv := s.promDesc()
			m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, float64(s.Value()), lv...)
			send(m, err, d)
		}
		return true
	})
	c.s.histograms.Range(func(_, v any) bool {
		s := v.(*Histogram)
		if c.q.histogram(s) {
			d, lv := s.promDesc()
			snap := s.Snapshot()
			buckets := make(map[float64]uint64, len(DefaultBuckets))
			for i, b := range DefaultBuckets {
				buckets[b] = snap.Cumulative[i]
			}
			m, err := prometheus.NewConstHistogram(d, snap.Count, snap.Sum, buckets, lv...)
			send(m, err, d)
		}
		return true
	})
}

// Gatherer gathers every stat of the store, plus the Go runtime and
// process metrics, for embedding in another Prometheus handler.
func (s *Store) Gatherer() prometheus.Gatherer { return s.gatherer(query{}) }

func (s *Store) gatherer(q query) prometheus.Gatherer {
	r := prometheus.NewRegistry()
	r.MustRegister(collector{s, q})
	runtime := prometheus.Gatherer(s.runtime)
	if q.filter != nil {
		runtime = filtered{s.runtime, q.filter}
	}
	return prometheus.Gatherers{runtime, r}
}

// filtered keeps the runtime families whose name matches; Envoy's filter
// applies to stat names, and go_* and process_* have no other.
type filtered struct {
	g      prometheus.Gatherer
	filter *regexp.Regexp
}

func (f filtered) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := f.g.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		if f.filter.MatchString(mf.GetName()) {
			out = append(out, mf)
		}
	}
	return out, err
}

// WritePrometheus writes the stats whose Envoy name matches filter (all
// when nil) in the Prometheus text exposition format, as Envoy's
// /stats/prometheus. A stat that cannot be exported (two stats mapping to
// one metric and label set) is left out and reported in the error after
// everything else was written.
func (s *Store) WritePrometheus(w io.Writer, filter *regexp.Regexp, opts ...Option) error {
	mfs, gatherErr := s.gatherer(newQuery(filter, opts)).Gather()
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return gatherErr
}

// PrometheusName returns the Prometheus metric name and labels Envoy
// would export the stat with full name name as. It applies only the
// default extractors, since the name alone carries no scope tags.
func PrometheusName(name string) (string, map[string]string) {
	m := extract(name, nil, nil)
	labels := make(map[string]string, len(m.tags))
	for _, t := range m.tags {
		labels[sanitize(t.Name)] = t.Value
	}
	return promName(m.extracted), labels
}

// collect returns the stats of m that keep accepts, sorted by name.
func collect[T interface{ Name() string }](m *sync.Map, keep func(T) bool) []T {
	var out []T
	m.Range(func(_, v any) bool {
		if t := v.(T); keep(t) {
			out = append(out, t)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}
