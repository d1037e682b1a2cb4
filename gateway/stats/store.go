package stats

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/waygate/waygate/filters"
)

// Store holds every stat of a gateway process. The zero value is not
// usable; call NewStore.
type Store struct {
	root *Scope

	// Lookups go through the sync.Maps without locking; mu serializes
	// creation only, so two callers racing to create one name get the
	// same stat.
	mu         sync.Mutex
	counters   sync.Map // name -> *Counter
	gauges     sync.Map // name -> *Gauge
	histograms sync.Map // name -> *Histogram

	// runtime gathers the Go runtime and process collectors.
	runtime *prometheus.Registry
}

// NewStore returns an empty store whose Prometheus exposition also
// carries the Go runtime (go_*) and process (process_*) collectors.
func NewStore() *Store {
	s := &Store{runtime: prometheus.NewRegistry()}
	s.root = &Scope{store: s}
	s.runtime.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return s
}

// Root is the scope with no prefix.
func (s *Store) Root() *Scope { return s.root }

// Scope returns a scope whose stat names start with prefix; see
// Scope.Scope.
func (s *Store) Scope(prefix string, tags ...Tag) *Scope { return s.root.Scope(prefix, tags...) }

// Counter returns the counter with the full name name, creating it.
func (s *Store) Counter(name string) *Counter { return s.root.Counter(name) }

// Gauge returns the gauge with the full name name, creating it.
func (s *Store) Gauge(name string) *Gauge { return s.root.Gauge(name) }

// GaugeFunc makes the gauge with the full name name read f.
func (s *Store) GaugeFunc(name string, f func() int64) *Gauge { return s.root.GaugeFunc(name, f) }

// Histogram returns the histogram with the full name name, creating it.
func (s *Store) Histogram(name string) *Histogram { return s.root.Histogram(name) }

// Filters is the store as the filter API sees it.
func (s *Store) Filters() filters.Stats { return s.root.Filters() }

// Scope is a name prefix with the tags it carries. Scopes are immutable
// and cheap; compiled config keeps the stats it looks up, not the scope.
type Scope struct {
	store  *Store
	prefix string
	tags   []Tag
	spans  []span
}

// Scope returns a child scope for prefix (which should end with "."). Each
// tag whose value appears in prefix followed by a dot is cut out of the
// Prometheus name at that place, so
//
//	store.Scope("cluster."+name+".", Tag{TagClusterName, name})
//
// exports cluster.<name>.upstream_rq_total as
// envoy_cluster_upstream_rq_total{envoy_cluster_name="<name>"} whatever
// dots or "|" the name holds. A tag not found in prefix is still attached.
func (s *Scope) Scope(prefix string, tags ...Tag) *Scope {
	c := &Scope{
		store:  s.store,
		prefix: s.prefix + prefix,
		tags:   append(append([]Tag(nil), s.tags...), tags...),
		spans:  append([]span(nil), s.spans...),
	}
	from := 0
	for _, t := range tags {
		i := strings.Index(prefix[from:], t.Value+".")
		if i < 0 {
			continue
		}
		start := len(s.prefix) + from + i
		c.spans = append(c.spans, span{start, start + len(t.Value) + 1})
		from += i + len(t.Value) + 1
	}
	return c
}

// Prefix is the scope's name prefix.
func (s *Scope) Prefix() string { return s.prefix }

// Counter returns the counter named prefix+name, creating it.
func (s *Scope) Counter(name string) *Counter {
	return lookup(s, &s.store.counters, name, func(m meta) *Counter { return &Counter{meta: m} })
}

// Gauge returns the gauge named prefix+name, creating it.
func (s *Scope) Gauge(name string) *Gauge {
	return lookup(s, &s.store.gauges, name, func(m meta) *Gauge { return &Gauge{meta: m} })
}

// GaugeFunc returns the gauge named prefix+name, whose value is now f's
// result, read when stats are exported: for values the gateway already
// holds elsewhere (server.state, server.uptime, a pool's size).
func (s *Scope) GaugeFunc(name string, f func() int64) *Gauge {
	g := s.Gauge(name)
	g.fn.Store(&f)
	return g
}

// Histogram returns the histogram named prefix+name, creating it.
func (s *Scope) Histogram(name string) *Histogram {
	return lookup(s, &s.store.histograms, name, func(m meta) *Histogram { return &Histogram{meta: m} })
}

func lookup[T any](s *Scope, m *sync.Map, name string, mk func(meta) *T) *T {
	full := s.prefix + name
	if v, ok := m.Load(full); ok {
		return v.(*T)
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if v, ok := m.Load(full); ok {
		return v.(*T)
	}
	v := mk(extract(full, s.tags, s.spans))
	m.Store(full, v)
	return v
}

// Filters is the scope as the filter API sees it: filters name their
// counters relative to the scope the gateway gives them.
func (s *Scope) Filters() filters.Stats { return filterStats{s} }

type filterStats struct{ s *Scope }

func (f filterStats) Counter(name string) filters.Counter { return f.s.Counter(name) }

func (f filterStats) Gauge(name string) filters.Gauge { return f.s.Gauge(name) }

func (f filterStats) Histogram(name string) filters.Histogram { return f.s.Histogram(name) }

func (f filterStats) Root() filters.MetricStats { return filterStats{f.s.store.root} }

var _ filters.MetricStats = filterStats{}

var _ filters.Counter = (*Counter)(nil)
