package upstream

import (
	"container/heap"
	"math/rand/v2"
	"sync/atomic"
)

// PickContext is what a pick depends on besides the cluster: the
// route's hash for consistent hashing, and which host selection attempt
// this is.
type PickContext struct {
	// Hash is the route's hash policy result, used by RING_HASH and
	// MAGLEV when HasHash is set; without it they pick at random, as
	// Envoy does.
	Hash    uint64
	HasHash bool
	// Attempt is 0 for the first pick of a request attempt and counts
	// the re-picks a retry host predicate asked for: hash balancers then
	// move off the hashed host, as Envoy's chooseHost(hash, attempt).
	Attempt uint32
}

// balancer picks one endpoint of a fixed, non-empty set. h is the
// request's hash (random when the route has none), attempt the host
// selection attempt (PickContext.Attempt).
type balancer interface {
	pick(h uint64, attempt uint32) *Endpoint
}

// weighted is an endpoint with the weight a balancer gives it.
type weighted struct {
	ep *Endpoint
	w  float64
}

func endpointWeights(eps []*Endpoint) []weighted {
	out := make([]weighted, len(eps))
	for i, e := range eps {
		out[i] = weighted{e, float64(e.Weight)}
	}
	return out
}

func equalWeights(ws []weighted) bool {
	for _, w := range ws {
		if w.w != ws[0].w {
			return false
		}
	}
	return true
}

// roundRobin is weighted round robin. Equal weights rotate; otherwise
// picks follow a precomputed earliest-deadline-first schedule, the
// order Envoy's EDF scheduler produces, so heavy hosts are spread out
// rather than bunched. The rotation starts at the first endpoint, so
// a given assignment is always walked the same way.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/load_balancers#weighted-round-robin
type roundRobin struct {
	next     atomic.Uint64
	eps      []*Endpoint
	schedule []uint32
}

// maxSchedule bounds a weighted round robin schedule; weights whose
// reduced sum is larger are scaled down to fit.
const maxSchedule = 1 << 16

func newRoundRobin(ws []weighted) *roundRobin {
	rr := &roundRobin{eps: make([]*Endpoint, len(ws))}
	for i, w := range ws {
		rr.eps[i] = w.ep
	}
	if !equalWeights(ws) {
		rr.schedule = edfSchedule(ws)
	}
	return rr
}

func (r *roundRobin) pick(uint64, uint32) *Endpoint {
	n := r.next.Add(1) - 1
	if s := r.schedule; len(s) > 0 {
		return r.eps[s[n%uint64(len(s))]]
	}
	return r.eps[n%uint64(len(r.eps))]
}

// edfSchedule lists indexes of ws so that each appears in proportion to
// its weight, in earliest-deadline-first order.
func edfSchedule(ws []weighted) []uint32 {
	total, lo := 0.0, ws[0].w
	for _, w := range ws {
		total += w.w
		lo = min(lo, w.w)
	}
	// Slots per unit of weight: the lightest host gets at least one
	// slot, the schedule at most maxSchedule.
	scale := 1 / lo
	if total*scale > maxSchedule {
		scale = maxSchedule / total
	}
	q := make(edfQueue, 0, len(ws))
	n := 0
	for i, w := range ws {
		slots := max(1, int(w.w*scale+0.5))
		n += slots
		q = append(q, edfEntry{idx: uint32(i), step: 1 / float64(slots), deadline: 1 / float64(slots)})
	}
	heap.Init(&q)
	out := make([]uint32, 0, n)
	for len(out) < n {
		e := &q[0]
		out = append(out, e.idx)
		e.deadline += e.step
		heap.Fix(&q, 0)
	}
	return out
}

type edfEntry struct {
	idx      uint32
	step     float64
	deadline float64
}

type edfQueue []edfEntry

func (q edfQueue) Len() int { return len(q) }
func (q edfQueue) Less(i, j int) bool {
	if q[i].deadline != q[j].deadline {
		return q[i].deadline < q[j].deadline
	}
	return q[i].idx < q[j].idx
}
func (q edfQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *edfQueue) Push(x any)   { *q = append(*q, x.(edfEntry)) }
func (q *edfQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// random picks at random, in proportion to weights.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/load_balancers#random
type random struct {
	eps []*Endpoint
	// cum holds cumulative weights; nil when weights are equal.
	cum []float64
}

func newRandom(ws []weighted) *random {
	r := &random{eps: make([]*Endpoint, len(ws))}
	for i, w := range ws {
		r.eps[i] = w.ep
	}
	if !equalWeights(ws) {
		r.cum = cumulative(ws)
	}
	return r
}

func cumulative(ws []weighted) []float64 {
	cum := make([]float64, len(ws))
	sum := 0.0
	for i, w := range ws {
		sum += w.w
		cum[i] = sum
	}
	return cum
}

func (r *random) pick(uint64, uint32) *Endpoint {
	if r.cum == nil {
		return r.eps[rand.Uint64N(uint64(len(r.eps)))]
	}
	return r.eps[searchCumulative(r.cum, rand.Float64()*r.cum[len(r.cum)-1])]
}

// searchCumulative returns the first index whose cumulative weight
// exceeds x.
func searchCumulative(cum []float64, x float64) int {
	lo, hi := 0, len(cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cum[m] <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
