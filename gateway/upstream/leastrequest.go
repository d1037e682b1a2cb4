package upstream

import (
	"math"
	"math/rand/v2"
)

// leastRequest sends to the host with the fewest active requests.
// With equal weights it samples choiceCount hosts at random and takes
// the least loaded (power of two choices by default). With unequal
// weights each host's weight is divided by (active+1)^bias, as Envoy's
// weighted least request does, and a host is drawn in proportion to
// those effective weights.
//
// Active requests are counted per address in the Manager, so they
// survive snapshot swaps.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/load_balancers#weighted-least-request
type leastRequest struct {
	eps         []*Endpoint
	weights     []float64 // nil when equal
	cum         []float64 // cumulative weights, for large sets
	choiceCount uint32
	bias        float64
}

func newLeastRequest(ws []weighted, choiceCount uint32, bias float64) *leastRequest {
	lr := &leastRequest{eps: make([]*Endpoint, len(ws)), choiceCount: choiceCount, bias: bias}
	for i, w := range ws {
		lr.eps[i] = w.ep
	}
	if !equalWeights(ws) {
		lr.weights = make([]float64, len(ws))
		for i, w := range ws {
			lr.weights[i] = w.w
		}
		if len(ws) > exactWeightedLR {
			lr.cum = cumulative(ws)
		}
	}
	return lr
}

func (l *leastRequest) pick(uint64, uint32) *Endpoint {
	n := uint64(len(l.eps))
	if n == 1 {
		return l.eps[0]
	}
	if l.weights == nil {
		best := l.eps[rand.Uint64N(n)]
		for i := uint32(1); i < l.choiceCount; i++ {
			c := l.eps[rand.Uint64N(n)]
			if c.ActiveRequests() < best.ActiveRequests() {
				best = c
			}
		}
		return best
	}
	if l.cum != nil {
		// Too many hosts to weigh them all on every pick: draw
		// choiceCount by static weight and keep the one whose weight
		// is least reduced by its load.
		var best *Endpoint
		bestW := -1.0
		for i := uint32(0); i < l.choiceCount; i++ {
			j := searchCumulative(l.cum, rand.Float64()*l.cum[len(l.cum)-1])
			if w := l.effective(j, l.eps[j]); w > bestW {
				best, bestW = l.eps[j], w
			}
		}
		return best
	}
	total := 0.0
	for i, e := range l.eps {
		total += l.effective(i, e)
	}
	x := rand.Float64() * total
	for i, e := range l.eps {
		x -= l.effective(i, e)
		if x < 0 {
			return e
		}
	}
	return l.eps[n-1]
}

// exactWeightedLR is the largest set weighted least request weighs in
// full on every pick.
const exactWeightedLR = 32

func (l *leastRequest) effective(i int, e *Endpoint) float64 {
	a := float64(e.ActiveRequests() + 1)
	switch l.bias {
	case 0:
		return l.weights[i]
	case 1:
		return l.weights[i] / a
	}
	return l.weights[i] / math.Pow(a, l.bias)
}
