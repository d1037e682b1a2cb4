package upstream

import (
	"fmt"
	"sort"
	"sync"

	"github.com/waygate/waygate/gateway/stats"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// Manager compiles clusters and keeps their connection pools alive
// across snapshots.
type Manager struct {
	// Stats, when set, keeps each cluster's stats.
	Stats *stats.Store

	mu    sync.Mutex
	pools map[string]*pool
	stats map[string]*ClusterStats
}

// NewManager returns an empty manager.
func NewManager() *Manager { return &Manager{pools: make(map[string]*pool)} }

// Build compiles every cluster with its assignment (looked up by the EDS
// service name). Pools of clusters whose connection settings did not
// change are reused; pools of clusters no longer present have their idle
// connections closed (requests still in flight on an older snapshot
// finish on their connections).
func (m *Manager) Build(clusters map[string]*clusterv3.Cluster, assignments map[string]*endpointv3.ClusterLoadAssignment) (map[string]*Cluster, error) {
	names := make([]string, 0, len(clusters))
	for n := range clusters {
		names = append(names, n)
	}
	sort.Strings(names)

	out := make(map[string]*Cluster, len(clusters))
	for _, name := range names {
		pc := clusters[name]
		edsName := pc.GetEdsClusterConfig().GetServiceName()
		if edsName == "" {
			edsName = name
		}
		c, err := compile(pc, assignments[edsName])
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", name, err)
		}
		out[name] = c
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[string]*pool, len(out))
	for name, c := range out {
		s, err := settingsOf(c.Proto, c.ConnectTimeout)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", name, err)
		}
		p := m.pools[name]
		if p == nil || p.settings != s {
			p = newPool(s)
		}
		c.pool = p
		next[name] = p
		if m.stats == nil {
			m.stats = map[string]*ClusterStats{}
		}
		if m.stats[name] == nil {
			m.stats[name] = newClusterStats(m.Stats, name)
		}
		c.Stats = m.stats[name]
	}
	for name, p := range m.pools {
		if next[name] != p {
			p.closeIdle()
		}
	}
	m.pools = next
	return out, nil
}

// EDSNames returns the ClusterLoadAssignment names the clusters wait for,
// sorted: the EDS subscription.
func EDSNames(clusters map[string]*clusterv3.Cluster) []string {
	var out []string
	for name, c := range clusters {
		if c.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		n := c.GetEdsClusterConfig().GetServiceName()
		if n == "" {
			n = name
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
