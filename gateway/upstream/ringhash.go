package upstream

import (
	"math"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// ringHash is Envoy's ketama-style consistent hash ring: each host is
// placed on the ring at the xxHash64 of "address_i" for i up to its
// share of the ring, and a request goes to the first entry at or after
// its hash. Adding or removing a host moves only the keys of its own
// arcs.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/load_balancers#ring-hash
type ringHash struct {
	hashes []uint64
	eps    []*Endpoint
}

// Envoy's ring_hash_lb_config defaults.
const (
	defaultMinRing = 1024
	defaultMaxRing = 8 << 20
)

func newRingHash(ws []weighted, minRing, maxRing uint64) *ringHash {
	sum := 0.0
	for _, w := range ws {
		sum += w.w
	}
	minW := 1.0
	for _, w := range ws {
		minW = min(minW, w.w/sum)
	}
	// Scale so the lightest host gets at least one entry and the ring
	// is at least minRing entries, capped at maxRing.
	scale := min(math.Ceil(minW*float64(minRing))/minW, float64(maxRing))
	size := int(math.Ceil(scale))
	type entry struct {
		h  uint64
		ep *Endpoint
	}
	ring := make([]entry, 0, size)
	var key []byte
	current, target := 0.0, 0.0
	for _, w := range ws {
		target += scale * w.w / sum
		for i := 0; current < target; i++ {
			key = append(key[:0], w.ep.Address...)
			key = append(key, '_')
			key = strconv.AppendInt(key, int64(i), 10)
			ring = append(ring, entry{xxhash.Sum64(key), w.ep})
			current++
		}
	}
	slices.SortStableFunc(ring, func(a, b entry) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	r := &ringHash{hashes: make([]uint64, len(ring)), eps: make([]*Endpoint, len(ring))}
	for i, e := range ring {
		r.hashes[i], r.eps[i] = e.h, e.ep
	}
	return r
}

func (r *ringHash) pick(h uint64, attempt uint32) *Endpoint {
	// First entry whose hash is >= h, wrapping to the start.
	lo, hi := 0, len(r.hashes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.hashes[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i := lo
	if i == len(r.hashes) {
		i = 0
	}
	if attempt > 0 {
		// Behave as if the host were not on the ring: move along it.
		i = (i + int(attempt)) % len(r.hashes)
	}
	return r.eps[i]
}
