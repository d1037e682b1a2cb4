package upstream

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// lbConfig is the compiled load balancing part of a cluster.
type lbConfig struct {
	policy clusterv3.Cluster_LbPolicy
	// panicThreshold is healthy_panic_threshold in percent: below it a
	// priority level picks among all its hosts (Envoy's panic mode).
	panicThreshold float64
	// localityWeighted is set by locality_weighted_lb_config.
	localityWeighted bool

	minRing, maxRing uint64
	maglevSize       uint64
	choiceCount      uint32
	activeBias       float64
	// slowStart ramps up the weight of new hosts (round robin, least
	// request); nil when off.
	slowStart *slowStart
}

func (c *lbConfig) hashing() bool {
	return c.policy == clusterv3.Cluster_RING_HASH || c.policy == clusterv3.Cluster_MAGLEV
}

// newBalancer builds the cluster's balancer over a non-empty set.
func (c *lbConfig) newBalancer(ws []weighted) balancer {
	switch c.policy {
	case clusterv3.Cluster_RANDOM:
		return newRandom(ws)
	case clusterv3.Cluster_LEAST_REQUEST:
		return newLeastRequest(ws, c.choiceCount, c.activeBias)
	case clusterv3.Cluster_RING_HASH:
		return newRingHash(ws, c.minRing, c.maxRing)
	case clusterv3.Cluster_MAGLEV:
		return newMaglev(ws, c.maglevSize)
	}
	return newRoundRobin(ws)
}

// compileLB reads lb_policy and its config.
//
// See https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/cluster/v3/cluster.proto#envoy-v3-api-enum-config-cluster-v3-cluster-lbpolicy
func compileLB(c *clusterv3.Cluster) (lbConfig, error) {
	out := lbConfig{
		policy:         c.GetLbPolicy(),
		panicThreshold: 50,
		minRing:        defaultMinRing,
		maxRing:        defaultMaxRing,
		maglevSize:     defaultMaglevSize,
		choiceCount:    2,
		activeBias:     1,
	}
	common := c.GetCommonLbConfig()
	if p := common.GetHealthyPanicThreshold(); p != nil {
		if v := p.GetValue(); v < 0 || v > 100 {
			return out, fmt.Errorf("common_lb_config.healthy_panic_threshold: %v is not a percentage within 0-100", v)
		}
		out.panicThreshold = p.GetValue()
	}
	out.localityWeighted = common.GetLocalityWeightedLbConfig() != nil
	var err error
	switch out.policy {
	case clusterv3.Cluster_ROUND_ROBIN:
		if out.slowStart, err = compileSlowStart("round_robin_lb_config.slow_start_config", c.GetRoundRobinLbConfig().GetSlowStartConfig()); err != nil {
			return out, err
		}
	case clusterv3.Cluster_RANDOM:
	case clusterv3.Cluster_CLUSTER_PROVIDED:
		// No cluster type here provides its own balancer; Envoy's
		// default applies.
		out.policy = clusterv3.Cluster_ROUND_ROBIN
	case clusterv3.Cluster_LEAST_REQUEST:
		lr := c.GetLeastRequestLbConfig()
		if cc := lr.GetChoiceCount(); cc != nil {
			if cc.GetValue() < 2 {
				return out, fmt.Errorf("least_request_lb_config.choice_count: %d must be at least 2", cc.GetValue())
			}
			out.choiceCount = cc.GetValue()
		}
		if b := lr.GetActiveRequestBias(); b != nil {
			if b.GetDefaultValue() < 0 {
				return out, fmt.Errorf("least_request_lb_config.active_request_bias: %v must not be negative", b.GetDefaultValue())
			}
			out.activeBias = b.GetDefaultValue()
		}
		if out.slowStart, err = compileSlowStart("least_request_lb_config.slow_start_config", lr.GetSlowStartConfig()); err != nil {
			return out, err
		}
	case clusterv3.Cluster_RING_HASH:
		rh := c.GetRingHashLbConfig()
		if rh.GetHashFunction() != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
			return out, fmt.Errorf("ring_hash_lb_config.hash_function: %v is not supported (XX_HASH is)", rh.GetHashFunction())
		}
		if v := rh.GetMinimumRingSize(); v != nil {
			out.minRing = v.GetValue()
		}
		if v := rh.GetMaximumRingSize(); v != nil {
			out.maxRing = v.GetValue()
		}
		if out.minRing == 0 || out.minRing > out.maxRing {
			return out, fmt.Errorf("ring_hash_lb_config: minimum_ring_size %d must be at least 1 and at most maximum_ring_size %d", out.minRing, out.maxRing)
		}
		if out.maxRing > defaultMaxRing {
			return out, fmt.Errorf("ring_hash_lb_config.maximum_ring_size: %d exceeds %d", out.maxRing, defaultMaxRing)
		}
	case clusterv3.Cluster_MAGLEV:
		if v := c.GetMaglevLbConfig().GetTableSize(); v != nil {
			if !isPrime(v.GetValue()) || v.GetValue() > 5000011 {
				return out, fmt.Errorf("maglev_lb_config.table_size: %d must be a prime no larger than 5000011", v.GetValue())
			}
			out.maglevSize = v.GetValue()
		}
	default:
		return out, fmt.Errorf("lb_policy: %v is not supported", out.policy)
	}
	return out, nil
}

func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
