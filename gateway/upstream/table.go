package upstream

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// table is what Pick reads: the endpoints grouped by priority with the
// share of traffic each priority level gets, and a balancer per level.
// It is rebuilt, never changed, when endpoints change or a host's
// health does (active health checks, outlier ejections), and swapped
// into the cluster atomically.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/priority
// and .../load_balancing/panic_threshold and .../load_balancing/locality_weight
type table struct {
	all    []*Endpoint
	levels []level
	// load is the cumulative percentage of traffic up to each level;
	// the last is 100.
	load    []uint32
	hashing bool
}

// level is one priority level.
type level struct {
	// panic is set when too few of the level's hosts are available:
	// then every host of the level is picked from, available or not.
	panic bool
	// healthy balances over the available hosts (nil if none), every
	// over all of them.
	healthy, every balancer
	// With locality weighting (non-hash balancers), a locality is
	// chosen first along schedule, then a host within it.
	localities []balancer
	schedule   []uint32
	next       *atomic.Uint64
}

func buildTable(eps []*Endpoint, cfg *lbConfig, overprovisioning uint32) *table {
	t := &table{all: eps, hashing: cfg.hashing()}
	if len(eps) == 0 {
		return t
	}
	byPrio := slices.Clone(eps)
	slices.SortStableFunc(byPrio, func(a, b *Endpoint) int { return int(a.Priority) - int(b.Priority) })
	var health []uint32
	for start := 0; start < len(byPrio); {
		end := start
		for end < len(byPrio) && byPrio[end].Priority == byPrio[start].Priority {
			end++
		}
		hosts := byPrio[start:end]
		start = end
		var avail []*Endpoint
		for _, e := range hosts {
			if e.Available() {
				avail = append(avail, e)
			}
		}
		lv := level{}
		healthyPct := 100 * float64(len(avail)) / float64(len(hosts))
		lv.panic = healthyPct < cfg.panicThreshold
		lv.every = cfg.newBalancer(hostWeights(hosts, cfg))
		if len(avail) > 0 {
			lv.healthy = cfg.newBalancer(hostWeights(avail, cfg))
			if cfg.localityWeighted && !cfg.hashing() {
				lv.localities, lv.schedule = localityBalancers(hosts, cfg, overprovisioning)
				lv.next = new(atomic.Uint64)
			}
		}
		t.levels = append(t.levels, lv)
		health = append(health, min(100, overprovisioning*uint32(len(avail))/uint32(len(hosts))))
	}
	t.load = priorityLoad(health)
	// Panic mode applies only when the levels together cannot take all
	// the traffic.
	total := uint32(0)
	for _, h := range health {
		total += h
	}
	if total >= 100 {
		for i := range t.levels {
			t.levels[i].panic = false
		}
	}
	return t
}

// priorityLoad spreads 100% of the traffic over priority levels in
// order, each taking up to its (overprovisioned) health, normalized
// when the levels together are less than 100% available. With no
// available host at all, everything goes to the first level.
func priorityLoad(health []uint32) []uint32 {
	total := uint32(0)
	for _, h := range health {
		total += h
	}
	total = min(total, 100)
	load := make([]uint32, len(health))
	if total == 0 {
		load[0] = 100
	} else {
		left := uint32(100)
		first := -1
		for i, h := range health {
			load[i] = min(left, h*100/total)
			left -= load[i]
			if first < 0 && h > 0 {
				first = i
			}
		}
		load[first] += left
	}
	for i := 1; i < len(load); i++ {
		load[i] += load[i-1]
	}
	return load
}

// hostWeights gives each host its weight; hash balancers with locality
// weighting scale it by its locality's share, as Envoy normalizes them.
func hostWeights(hosts []*Endpoint, cfg *lbConfig) []weighted {
	ws := endpointWeights(hosts)
	if s := cfg.slowStart; s != nil {
		now := time.Now()
		for i := range ws {
			if h := ws[i].ep.host; h != nil {
				ws[i].w *= s.factor(now.Sub(h.added))
			}
		}
	}
	if !cfg.localityWeighted || !cfg.hashing() {
		return ws
	}
	perLoc := map[string]float64{}
	locTotal := 0.0
	seen := map[string]bool{}
	for _, e := range hosts {
		k := localityKey(e.Locality)
		perLoc[k] += float64(e.Weight)
		if !seen[k] {
			seen[k] = true
			locTotal += float64(e.LocalityWeight)
		}
	}
	if locTotal == 0 {
		return ws
	}
	out := ws[:0]
	for _, w := range ws {
		k := localityKey(w.ep.Locality)
		if w.ep.LocalityWeight == 0 {
			continue
		}
		w.w = w.w / perLoc[k] * float64(w.ep.LocalityWeight) / locTotal
		out = append(out, w)
	}
	if len(out) == 0 {
		return endpointWeights(hosts)
	}
	return out
}

// localityBalancers builds a balancer per locality with available
// hosts and a schedule over them by effective weight: the locality's
// weight times its availability (overprovisioned, capped at 1).
// Localities without a weight get no traffic, as in Envoy.
func localityBalancers(hosts []*Endpoint, cfg *lbConfig, overprovisioning uint32) ([]balancer, []uint32) {
	type loc struct {
		weight       uint32
		total, avail []*Endpoint
	}
	var order []string
	locs := map[string]*loc{}
	for _, e := range hosts {
		k := localityKey(e.Locality)
		l := locs[k]
		if l == nil {
			l = &loc{weight: e.LocalityWeight}
			locs[k] = l
			order = append(order, k)
		}
		l.total = append(l.total, e)
		if e.Available() {
			l.avail = append(l.avail, e)
		}
	}
	var bs []balancer
	var ws []weighted
	for _, k := range order {
		l := locs[k]
		if l.weight == 0 || len(l.avail) == 0 {
			continue
		}
		avail := min(100, overprovisioning*uint32(len(l.avail))/uint32(len(l.total)))
		eff := uint64(l.weight) * uint64(avail)
		if eff == 0 {
			continue
		}
		bs = append(bs, cfg.newBalancer(endpointWeights(l.avail)))
		ws = append(ws, weighted{w: float64(eff)})
	}
	if len(bs) == 0 {
		return nil, nil
	}
	return bs, edfSchedule(ws)
}

func localityKey(l *corev3.Locality) string {
	return l.GetRegion() + "\x00" + l.GetZone() + "\x00" + l.GetSubZone()
}

// pick chooses a level by the traffic split (by the hash for hash
// balancers, so a key keeps its level), then a host within it.
func (t *table) pick(pc PickContext) *Endpoint {
	if len(t.levels) == 0 {
		return nil
	}
	h := pc.Hash
	if !pc.HasHash {
		h = rand.Uint64()
	}
	lv := &t.levels[0]
	if len(t.levels) > 1 {
		r := uint32(h % 100)
		if !t.hashing {
			r = uint32(rand.Uint64N(100))
		}
		for i, c := range t.load {
			if r < c {
				lv = &t.levels[i]
				break
			}
		}
	}
	switch {
	case lv.panic:
		return lv.every.pick(h, pc.Attempt)
	case lv.healthy == nil:
		return nil
	case lv.schedule != nil:
		n := lv.next.Add(1)
		return lv.localities[lv.schedule[n%uint64(len(lv.schedule))]].pick(h, pc.Attempt)
	}
	return lv.healthy.pick(h, pc.Attempt)
}
