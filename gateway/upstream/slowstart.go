package upstream

import (
	"fmt"
	"math"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// slowStart is a round robin or least request balancer's
// slow_start_config: a host that joined the cluster less than window ago
// gets its weight scaled by max(minWeight, (t/window)^(1/aggression)),
// t its time in the cluster (at least a second), so traffic to a new
// host ramps up.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/slow_start
type slowStart struct {
	window     time.Duration
	aggression float64
	minWeight  float64 // fraction of the weight, 0.1 by default
}

func compileSlowStart(p string, c *clusterv3.Cluster_SlowStartConfig) (*slowStart, error) {
	if c == nil || c.GetSlowStartWindow() == nil {
		return nil, nil
	}
	w := c.GetSlowStartWindow()
	if err := w.CheckValid(); err != nil || w.AsDuration() < 0 {
		return nil, fmt.Errorf("%s.slow_start_window: not a non-negative duration", p)
	}
	if w.AsDuration() == 0 {
		return nil, nil
	}
	s := &slowStart{window: w.AsDuration(), aggression: 1, minWeight: 0.1}
	if a := c.GetAggression(); a != nil {
		if a.GetDefaultValue() <= 0 {
			return nil, fmt.Errorf("%s.aggression: %v must be positive", p, a.GetDefaultValue())
		}
		s.aggression = a.GetDefaultValue()
	}
	if m := c.GetMinWeightPercent(); m != nil {
		if m.GetValue() < 0 || m.GetValue() > 100 {
			return nil, fmt.Errorf("%s.min_weight_percent: %v is not a percentage within 0-100", p, m.GetValue())
		}
		s.minWeight = m.GetValue() / 100
	}
	return s, nil
}

// factor scales the weight of a host in the cluster for age.
func (s *slowStart) factor(age time.Duration) float64 {
	if age >= s.window {
		return 1
	}
	t := max(age, time.Second).Seconds() / s.window.Seconds()
	return min(1, max(s.minWeight, math.Pow(t, 1/s.aggression)))
}

// next says when weights in slow start should be worked out again: a
// tenth of the window from now, or when the youngest host leaves it;
// false when none is in it.
func (s *slowStart) next(hosts map[string]*host, now time.Time) (time.Duration, bool) {
	in := false
	var soonest time.Duration
	for _, h := range hosts {
		if left := s.window - now.Sub(h.added); left > 0 {
			if !in || left < soonest {
				soonest = left
			}
			in = true
		}
	}
	return min(soonest, s.window/10), in
}
