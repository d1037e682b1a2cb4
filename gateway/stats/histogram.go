package stats

import (
	"math"
	"sort"
	"sync/atomic"
	"time"
)

// DefaultBuckets are Envoy's default histogram bucket bounds, in
// milliseconds (stats_config.histogram_bucket_settings unset).
var DefaultBuckets = []float64{
	0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
	30000, 60000, 300000, 600000, 1800000, 3600000,
}

// Histogram records a distribution, durations in milliseconds as Envoy's
// upstream_rq_time and downstream_rq_time. Recording is lock-free: one
// atomic add on the bucket, the count and the sum.
type Histogram struct {
	meta
	// counts[i] counts values <= DefaultBuckets[i] and above the previous
	// bound; the last element counts values above every bound.
	counts [20]atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

// Record records a duration in milliseconds.
func (h *Histogram) Record(d time.Duration) {
	h.RecordValue(float64(d) / float64(time.Millisecond))
}

// RecordValue records v in the histogram's unit.
func (h *Histogram) RecordValue(v float64) {
	i := sort.SearchFloat64s(DefaultBuckets, v)
	h.counts[i].Add(1)
	h.count.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// HistogramSnapshot is a histogram's state at one moment.
type HistogramSnapshot struct {
	Count uint64
	Sum   float64
	// Cumulative[i] counts values <= DefaultBuckets[i].
	Cumulative []uint64
}

// Snapshot reads the histogram. Concurrent records may land between the
// reads of different buckets; the snapshot is then off by those records.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{
		Count:      h.count.Load(),
		Sum:        math.Float64frombits(h.sum.Load()),
		Cumulative: make([]uint64, len(DefaultBuckets)),
	}
	var c uint64
	for i := range DefaultBuckets {
		c += h.counts[i].Load()
		s.Cumulative[i] = c
	}
	return s
}

// Quantile estimates the q-th quantile (0 <= q <= 1) by linear
// interpolation inside the bucket that holds it, as Prometheus'
// histogram_quantile does. Values above the last bound report that bound.
// It returns NaN when nothing was recorded.
func (s HistogramSnapshot) Quantile(q float64) float64 {
	if s.Count == 0 {
		return math.NaN()
	}
	rank := q * float64(s.Count)
	var prev uint64
	lower := 0.0
	for i, c := range s.Cumulative {
		if float64(c) >= rank && c > 0 {
			inBucket := float64(c - prev)
			if inBucket == 0 {
				return DefaultBuckets[i]
			}
			return lower + (DefaultBuckets[i]-lower)*(rank-float64(prev))/inBucket
		}
		prev, lower = c, DefaultBuckets[i]
	}
	return DefaultBuckets[len(DefaultBuckets)-1]
}
