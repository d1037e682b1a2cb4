package upstream_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/gateway/upstream"
)

func policy(p clusterv3.Cluster_LbPolicy) func(*clusterv3.Cluster) {
	return func(c *clusterv3.Cluster) { c.LbPolicy = p }
}

// within fails unless every address got its expected share of n picks,
// give or take tol (a fraction of n).
func within(t *testing.T, got map[string]int, n int, want map[string]float64, tol float64) {
	t.Helper()
	for addr, share := range want {
		if f := float64(got[addr]) / float64(n); math.Abs(f-share) > tol {
			t.Errorf("%s got %.3f of picks, want %.3f ± %.3f (all: %v)", addr, f, share, tol, got)
		}
	}
	for addr := range got {
		if _, ok := want[addr]; !ok && got[addr] > 0 {
			t.Errorf("%s got %d picks, want none", addr, got[addr])
		}
	}
}

func TestDistribution(t *testing.T) {
	a := addrs(3)
	weighted := []ep{{addr: a[0].addr, weight: 1}, {addr: a[1].addr, weight: 2}, {addr: a[2].addr, weight: 3}}
	third := map[string]float64{a[0].addr: 1. / 3, a[1].addr: 1. / 3, a[2].addr: 1. / 3}
	sixths := map[string]float64{a[0].addr: 1. / 6, a[1].addr: 2. / 6, a[2].addr: 3. / 6}
	tests := []struct {
		name   string
		eps    []ep
		policy clusterv3.Cluster_LbPolicy
		n      int
		want   map[string]float64
		tol    float64
	}{
		// Round robin is exact over whole rotations.
		{"round robin equal", a, clusterv3.Cluster_ROUND_ROBIN, 600, third, 0.001},
		{"round robin weighted", weighted, clusterv3.Cluster_ROUND_ROBIN, 600, sixths, 0.001},
		{"random equal", a, clusterv3.Cluster_RANDOM, 30000, third, 0.02},
		{"random weighted", weighted, clusterv3.Cluster_RANDOM, 30000, sixths, 0.02},
		{"least request idle equal", a, clusterv3.Cluster_LEAST_REQUEST, 30000, third, 0.02},
		{"least request idle weighted", weighted, clusterv3.Cluster_LEAST_REQUEST, 30000, sixths, 0.02},
		{"ring hash weighted", weighted, clusterv3.Cluster_RING_HASH, 30000, sixths, 0.05},
		{"maglev weighted", weighted, clusterv3.Cluster_MAGLEV, 30000, sixths, 0.02},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cl, _ := build(t, cluster(tt.eps, policy(tt.policy)))
			got := picks(t, cl, tt.n, func(int) upstream.PickContext {
				return upstream.PickContext{Hash: rand.Uint64(), HasHash: true}
			})
			within(t, got, tt.n, tt.want, tt.tol)
		})
	}
}

func TestRoundRobinSpreadsHeavyHosts(t *testing.T) {
	a := addrs(2)
	_, cl, _ := build(t, cluster([]ep{{addr: a[0].addr, weight: 1}, {addr: a[1].addr, weight: 3}}, nil))
	// Within every window of 4 picks the light host appears once: the
	// heavy one is not sent three requests in a row and then idles.
	var seq []string
	for i := 0; i < 40; i++ {
		e, _ := cl.Pick(upstream.PickContext{})
		seq = append(seq, e.Address)
	}
	for i := 0; i+4 <= len(seq); i += 4 {
		n := 0
		for _, s := range seq[i : i+4] {
			if s == a[0].addr {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("window %d: light host %d times in %v", i/4, n, seq[i:i+4])
		}
	}
}

// TestConsistentHashChurn adds a fifth endpoint to four: about a fifth
// of the keys move, the rest keep their endpoint. With Maglev the keys
// that move go to the new endpoint. Envoy's ring gives each host
// min_ring_size/N entries, so a fifth host also takes a few entries
// from each other host and a few keys move between old ones; the same
// is true here, as the ring is built as Envoy builds it.
func TestConsistentHashChurn(t *testing.T) {
	for _, p := range []clusterv3.Cluster_LbPolicy{clusterv3.Cluster_RING_HASH, clusterv3.Cluster_MAGLEV} {
		t.Run(p.String(), func(t *testing.T) {
			a := addrs(5)
			m, before, _ := build(t, cluster(a[:4], policy(p)))
			r := rand.New(rand.NewPCG(1, 2))
			keys := make([]uint64, 10000)
			first := make([]string, len(keys))
			for i := range keys {
				keys[i] = r.Uint64()
				e, err := before.Pick(upstream.PickContext{Hash: keys[i], HasHash: true})
				if err != nil {
					t.Fatal(err)
				}
				first[i] = e.Address
				// The same key always lands on the same endpoint.
				if again, _ := before.Pick(upstream.PickContext{Hash: keys[i], HasHash: true}); again.Address != e.Address {
					t.Fatalf("key %d picked %s then %s", i, e.Address, again.Address)
				}
			}
			after := rebuild(t, m, cluster(a, policy(p)))
			moved, toNew := 0, 0
			for i, k := range keys {
				e, _ := after.Pick(upstream.PickContext{Hash: k, HasHash: true})
				if e.Address != first[i] {
					moved++
					if e.Address == a[4].addr {
						toNew++
					}
				}
			}
			f := float64(moved) / float64(len(keys))
			t.Logf("%s: %.1f%% of keys moved, %d of %d to the new endpoint", p, 100*f, toNew, moved)
			if f < 0.10 || f > 0.30 {
				t.Errorf("%.1f%% of keys moved, want 10%%-30%%", 100*f)
			}
			if p == clusterv3.Cluster_MAGLEV && toNew < moved*9/10 {
				t.Errorf("%d of %d moved keys went to the new endpoint; keys should move only onto it", toNew, moved)
			}
		})
	}
}

// TestHashAttemptMovesOff: a host selection retry with the same hash
// goes elsewhere, as Envoy's previous_hosts predicate needs.
func TestHashAttemptMovesOff(t *testing.T) {
	for _, p := range []clusterv3.Cluster_LbPolicy{clusterv3.Cluster_RING_HASH, clusterv3.Cluster_MAGLEV} {
		t.Run(p.String(), func(t *testing.T) {
			_, cl, _ := build(t, cluster(addrs(4), policy(p)))
			moved := 0
			for i := 0; i < 1000; i++ {
				h := rand.Uint64()
				e0, _ := cl.Pick(upstream.PickContext{Hash: h, HasHash: true})
				moves := false
				for a := uint32(1); a <= 3 && !moves; a++ {
					e, _ := cl.Pick(upstream.PickContext{Hash: h, HasHash: true, Attempt: a})
					moves = e.Address != e0.Address
				}
				if moves {
					moved++
				}
			}
			if moved < 950 {
				t.Errorf("only %d of 1000 keys found another host within 3 attempts", moved)
			}
		})
	}
}

func TestPriorityAndPanic(t *testing.T) {
	a := addrs(6)
	p := func(e ep, prio uint32, unhealthy bool) ep { e.priority, e.unhealth = prio, unhealthy; return e }
	tests := []struct {
		name   string
		eps    []ep
		edit   func(*clusterv3.Cluster)
		want   map[string]float64
		noneOK bool
	}{{
		name: "all of priority 0 healthy takes everything",
		eps:  []ep{p(a[0], 0, false), p(a[1], 0, false), p(a[2], 1, false)},
		want: map[string]float64{a[0].addr: .5, a[1].addr: .5},
	}, {
		// One of two healthy: 1.4 × 50% = 70% stays on priority 0.
		name: "half of priority 0 healthy spills 30% over",
		eps:  []ep{p(a[0], 0, false), p(a[1], 0, true), p(a[2], 1, false)},
		want: map[string]float64{a[0].addr: .7, a[2].addr: .3},
	}, {
		// Three of four healthy: 1.4 × 75% caps at 100%.
		name: "overprovisioning keeps priority 0 whole",
		eps:  []ep{p(a[0], 0, false), p(a[1], 0, false), p(a[2], 0, false), p(a[3], 0, true), p(a[4], 1, false)},
		want: map[string]float64{a[0].addr: 1. / 3, a[1].addr: 1. / 3, a[2].addr: 1. / 3},
	}, {
		// One of four healthy is below the 50% panic threshold: every
		// host takes traffic.
		name: "panic picks among all hosts",
		eps:  []ep{p(a[0], 0, false), p(a[1], 0, true), p(a[2], 0, true), p(a[3], 0, true)},
		want: map[string]float64{a[0].addr: .25, a[1].addr: .25, a[2].addr: .25, a[3].addr: .25},
	}, {
		name: "panic threshold 0 keeps to healthy hosts",
		eps:  []ep{p(a[0], 0, false), p(a[1], 0, true), p(a[2], 0, true), p(a[3], 0, true)},
		edit: func(c *clusterv3.Cluster) {
			c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: percent(0)}
		},
		want: map[string]float64{a[0].addr: 1},
	}, {
		name: "locality weights split traffic 1:3",
		eps:  []ep{{addr: a[0].addr, zone: "a"}, {addr: a[1].addr, zone: "b"}, {addr: a[2].addr, zone: "b"}},
		edit: func(c *clusterv3.Cluster) {
			c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{
				LocalityConfigSpecifier: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{LocalityWeightedLbConfig: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{}},
			}
			for _, le := range c.LoadAssignment.Endpoints {
				w := uint32(1)
				if le.Locality.Zone == "b" {
					w = 3
				}
				le.LoadBalancingWeight = wrapperspb.UInt32(w)
			}
		},
		want: map[string]float64{a[0].addr: .25, a[1].addr: .375, a[2].addr: .375},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cl, _ := build(t, cluster(tt.eps, tt.edit))
			const n = 20000
			within(t, picks(t, cl, n, nil), n, tt.want, 0.02)
		})
	}
}

func TestNoHealthyUpstream(t *testing.T) {
	a := addrs(2)
	for _, unhealthy := range []bool{false, true} {
		t.Run(fmt.Sprint("eds unhealthy ", unhealthy), func(t *testing.T) {
			var eps []ep
			if unhealthy {
				eps = []ep{{addr: a[0].addr, unhealth: true}}
			}
			_, cl, _ := build(t, cluster(eps, func(c *clusterv3.Cluster) {
				c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: percent(0)}
			}))
			if _, err := cl.Pick(upstream.PickContext{}); err != upstream.ErrNoHealthyUpstream {
				t.Fatalf("Pick: %v, want ErrNoHealthyUpstream", err)
			}
		})
	}
}
