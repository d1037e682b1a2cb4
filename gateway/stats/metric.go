package stats

import "sync/atomic"

// meta is what a stat knows about its name, computed once at creation.
type meta struct {
	name string // the full Envoy name
	// extracted is the name with its tag values cut out
	// ("cluster.upstream_rq"), the base of the Prometheus name.
	extracted string
	tags      []Tag
}

// Name is the stat's full Envoy name.
func (m *meta) Name() string { return m.name }

// Tags are the stat's tags, in extraction order.
func (m *meta) Tags() []Tag { return m.tags }

// Counter is a monotonically increasing count. It satisfies
// filters.Counter.
type Counter struct {
	v atomic.Uint64
	meta
}

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value is the current count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down (active connections, pending
// requests). Envoy's gauges are unsigned; a signed value here keeps a
// stray extra Dec visible as a negative number instead of 2^64-1.
type Gauge struct {
	v  atomic.Int64
	fn atomic.Pointer[func() int64] // set for gauges read on demand
	meta
}

// Set replaces the value.
func (g *Gauge) Set(v int64) { g.v.Store(v) }

// Add adds d, which may be negative.
func (g *Gauge) Add(d int64) { g.v.Add(d) }

// Inc adds one.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Value is the current value: the function's result for a gauge made by
// GaugeFunc.
func (g *Gauge) Value() int64 {
	if f := g.fn.Load(); f != nil {
		return (*f)()
	}
	return g.v.Load()
}

// used says whether the gauge counts as used for ?usedonly: a gauge read
// on demand always does; others once they are non-zero (Envoy tracks a
// flag, which would cost the hot path an extra atomic).
func (g *Gauge) used() bool { return g.fn.Load() != nil || g.v.Load() != 0 }
