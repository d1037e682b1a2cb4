package upstream

import (
	"github.com/cespare/xxhash/v2"
)

// maglev is Google's Maglev consistent hashing table, weighted as
// Envoy builds it: each host fills table slots along its own
// permutation (offset and skip from xxHash64 of its address with seeds
// 0 and 1), heavier hosts taking turns more often. Lookups are one
// index into the table.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/load_balancers#maglev
type maglev struct {
	table []*Endpoint
}

// defaultMaglevSize is Envoy's default table size, a prime.
const defaultMaglevSize = 65537

func newMaglev(ws []weighted, size uint64) *maglev {
	sum, maxW := 0.0, 0.0
	for _, w := range ws {
		sum += w.w
	}
	type build struct {
		ep           *Endpoint
		offset, skip uint64
		weight       float64
		target       float64
		next         uint64
	}
	bs := make([]build, len(ws))
	for i, w := range ws {
		n := w.w / sum
		maxW = max(maxW, n)
		bs[i] = build{
			ep:     w.ep,
			offset: xxhash.Sum64String(w.ep.Address) % size,
			skip:   seeded(w.ep.Address, 1)%(size-1) + 1,
			weight: n,
		}
	}
	table := make([]*Endpoint, size)
	filled := uint64(0)
	for iter := uint64(0); filled < size; iter++ {
		for j := range bs {
			if filled >= size {
				break
			}
			b := &bs[j]
			// A host of the largest weight takes a slot every round;
			// one of a third of it every third round.
			if float64(iter)*b.weight < b.target {
				continue
			}
			b.target += maxW
			c := (b.offset + b.skip*b.next) % size
			for table[c] != nil {
				b.next++
				c = (b.offset + b.skip*b.next) % size
			}
			table[c] = b.ep
			b.next++
			filled++
		}
	}
	return &maglev{table: table}
}

func seeded(s string, seed uint64) uint64 {
	d := xxhash.NewWithSeed(seed)
	_, _ = d.WriteString(s)
	return d.Sum64()
}

func (m *maglev) pick(h uint64, attempt uint32) *Endpoint {
	if attempt > 0 {
		// Envoy flips many bits per attempt so retries spread out.
		h ^= ^uint64(0) - uint64(attempt) + 1
	}
	return m.table[h%uint64(len(m.table))]
}
