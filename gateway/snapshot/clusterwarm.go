package snapshot

import (
	"sort"
	"strconv"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// defaultInitialFetchTimeout is Envoy's initial_fetch_timeout when a
// ConfigSource leaves it unset.
const defaultInitialFetchTimeout = 15 * time.Second

// clusterWarmup is the initial cluster warm-up. As in Envoy, where the
// listeners are only initialized once the clusters of the first CDS
// response have warmed, no listener starts (and the gateway does not
// report ready) until every EDS cluster of the first accepted CDS has its
// ClusterLoadAssignment (an empty one counts) or its eds_config's
// initial_fetch_timeout has passed. Otherwise the first requests meet
// clusters without endpoints and fail with 503s. Clusters added later
// warm on their own and hold no listener.
type clusterWarmup struct {
	started, done bool
	// waiting are the EDS clusters still without endpoints, by EDS
	// resource name: the cluster name and when the wait for it ends
	// (zero: never, initial_fetch_timeout 0).
	waiting map[string]warmingCluster
	timer   *time.Timer
}

type warmingCluster struct {
	cluster  string
	deadline time.Time
}

// update follows one accepted set of clusters and assignments: the first
// set of clusters starts the warm-up, assignments and timeouts end it.
// It reports whether the wait changed, so held listeners are looked at
// again. onDeadline is armed for the next deadline; it must call
// update again, under the builder's lock.
func (w *clusterWarmup) update(cds bool, clusters map[string]*clusterv3.Cluster, assigned map[string]bool, now time.Time, onDeadline func()) bool {
	if w.done || (!w.started && !cds) {
		return false
	}
	changed := false
	if !w.started {
		w.started, changed = true, true
		w.waiting = map[string]warmingCluster{}
		for name, c := range clusters {
			if c.GetType() != clusterv3.Cluster_EDS {
				continue
			}
			eds := edsName(name, c)
			timeout := defaultInitialFetchTimeout
			if d := c.GetEdsClusterConfig().GetEdsConfig().GetInitialFetchTimeout(); d != nil {
				timeout = d.AsDuration()
			}
			wc := warmingCluster{cluster: name}
			if timeout > 0 {
				wc.deadline = now.Add(timeout)
			}
			w.waiting[eds] = wc
		}
	}
	if cds {
		// A cluster removed while it warms is no longer waited for.
		current := map[string]bool{}
		for name, c := range clusters {
			if c.GetType() == clusterv3.Cluster_EDS {
				current[edsName(name, c)] = true
			}
		}
		for eds := range w.waiting {
			if !current[eds] {
				delete(w.waiting, eds)
				changed = true
			}
		}
	}
	var next time.Time
	for eds, wc := range w.waiting {
		switch {
		case assigned[eds], !wc.deadline.IsZero() && !now.Before(wc.deadline):
			delete(w.waiting, eds)
			changed = true
		case !wc.deadline.IsZero() && (next.IsZero() || wc.deadline.Before(next)):
			next = wc.deadline
		}
	}
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.waiting) == 0 {
		w.done, w.waiting = true, nil
		return true
	}
	if !next.IsZero() {
		w.timer = time.AfterFunc(next.Sub(now), onDeadline)
	}
	return changed
}

// reason says why listeners wait for the warm-up, or "" once they need
// not.
func (w *clusterWarmup) reason() string {
	if w.done || len(w.waiting) == 0 {
		return ""
	}
	names := make([]string, 0, len(w.waiting))
	for _, wc := range w.waiting {
		names = append(names, strconv.Quote(wc.cluster))
	}
	sort.Strings(names)
	return "waiting for the initial cluster warm-up: endpoints of cluster " + strings.Join(names, ", ")
}

// edsName is the ClusterLoadAssignment name an EDS cluster asks for.
func edsName(name string, c *clusterv3.Cluster) string {
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return name
}
