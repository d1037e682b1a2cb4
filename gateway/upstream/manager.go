package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waygate/waygate/gateway/stats"
	"github.com/waygate/waygate/gateway/tlsconfig"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// Manager compiles clusters and keeps what must outlive a snapshot:
// per cluster, its hosts (connections, active requests, health,
// ejections), circuit breaker counters, and the outlier detector,
// health checker and DNS resolver that update them.
type Manager struct {
	// Stats, when set, keeps each cluster's stats.
	Stats *stats.Store
	// Log, when set, receives health and ejection changes.
	Log *slog.Logger
	// Dial, when set, opens HTTP/1.1 upstream connections instead of a
	// plain TCP dial, bounded by the cluster's connect timeout: for
	// upstream bind options, or a test network slower than loopback.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu       sync.Mutex
	clusters map[string]*clusterState
	stats    map[string]*ClusterStats
	breakers map[string]*breakers
}

// NewManager returns an empty manager.
func NewManager() *Manager { return &Manager{clusters: map[string]*clusterState{}} }

// Build compiles every cluster with its assignment (looked up by the EDS
// service name) and makes them current. Hosts of an address that stays
// keep their state; hosts that go away have their idle connections
// closed (requests in flight on an older snapshot finish on theirs);
// clusters that go away stop their checkers.
func (m *Manager) Build(clusters map[string]*clusterv3.Cluster, assignments map[string]*endpointv3.ClusterLoadAssignment) (map[string]*Cluster, error) {
	return m.BuildWithSecrets(clusters, assignments, nil)
}

// BuildWithSecrets is Build for clusters whose TLS transport sockets
// read SDS secrets (tls.go); a cluster whose secret is missing is built,
// and its TLS connections fail until a build with the secret.
func (m *Manager) BuildWithSecrets(clusters map[string]*clusterv3.Cluster, assignments map[string]*endpointv3.ClusterLoadAssignment, secrets tlsconfig.Secrets) (map[string]*Cluster, error) {
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
		if err == nil {
			c.transport, err = compileTransport(pc, c.endpoints, secrets)
		}
		if err == nil && c.transport.proxyProtocol() {
			// A connection carries one downstream's addresses.
			c.settings.maxRequests = 1
			c.proxyProtocol = true
		}
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", name, err)
		}
		out[name] = c
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.clusters == nil {
		m.clusters = map[string]*clusterState{}
	}
	if m.stats == nil {
		m.stats = map[string]*ClusterStats{}
		m.breakers = map[string]*breakers{}
	}
	for _, name := range names {
		c := out[name]
		if m.breakers[name] == nil {
			m.breakers[name] = newBreakers()
			m.stats[name] = newClusterStats(m.Stats, name, m.breakers[name])
		}
		c.Stats = m.stats[name]
		cs := m.clusters[name]
		if cs == nil || cs.settings != c.settings || cs.protocol != c.Protocol || !sameSockets(cs.current.Proto, c.Proto) {
			if cs != nil {
				cs.close()
			}
			cs = newClusterState(m, name, c.settings, c.Protocol, m.breakers[name], c.Stats)
			m.clusters[name] = cs
		}
		cs.install(c)
	}
	for name, cs := range m.clusters {
		if out[name] == nil {
			cs.close()
			delete(m.clusters, name)
		}
	}
	return out, nil
}

// Close stops every checker and resolver and closes idle connections.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, cs := range m.clusters {
		cs.close()
		delete(m.clusters, name)
	}
}

func (m *Manager) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.New(slog.DiscardHandler)
}

// clusterState is what the Manager keeps for one cluster name while
// its connection settings stay the same.
type clusterState struct {
	m        *Manager
	name     string
	settings poolSettings
	protocol Protocol
	breakers *breakers
	stats    *ClusterStats
	h2       *http.Transport
	upgrade  *http.Transport
	// used is set once the cluster carried a request: until then,
	// health checks run at no_traffic_interval.
	used atomic.Bool

	detector atomic.Pointer[detector]
	// transport is the current cluster's TLS sockets (tls.go).
	transport atomic.Pointer[transport]

	// mu guards the fields below and serializes table rebuilds.
	mu       sync.Mutex
	current  *Cluster
	hosts    map[string]*host
	resolved []*Endpoint // STRICT_DNS answers
	checker  *checker
	resolver *resolver
	closed   bool
	// ramp rebuilds the table while hosts are in slow start.
	ramp *time.Timer
}

func newClusterState(m *Manager, name string, s poolSettings, p Protocol, b *breakers, st *ClusterStats) *clusterState {
	cs := &clusterState{m: m, name: name, settings: s, protocol: p, breakers: b, stats: st, hosts: map[string]*host{}}
	base := func() *http.Transport {
		return &http.Transport{
			DialContext:         cs.dial,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     s.idleTimeout,
			DisableCompression:  true, // a proxy passes encodings through
		}
	}
	cs.upgrade = base()
	cs.upgrade.Protocols = new(http.Protocols)
	cs.upgrade.Protocols.SetHTTP1(true)
	cs.upgrade.MaxIdleConnsPerHost = -1
	cs.h2 = base()
	cs.h2.Protocols = new(http.Protocols)
	cs.h2.Protocols.SetUnencryptedHTTP2(true)
	if s.pingInterval > 0 {
		cs.h2.HTTP2 = &http.HTTP2Config{SendPingTimeout: s.pingInterval, PingTimeout: s.pingTimeout}
	}
	// One request per connection (max_requests_per_connection 1, or a
	// PROXY protocol socket, whose header names one downstream) holds
	// for HTTP/2 too: no connection is shared.
	cs.h2.DisableKeepAlives = s.maxRequests == 1
	return cs
}

// install makes c the cluster's current compiled form.
func (cs *clusterState) install(c *Cluster) {
	c.state = cs
	cs.breakers.setLimits(&c.limits)
	cs.transport.Store(c.transport)

	d := cs.detector.Load()
	newOutlier := !d.sameConfig(c.outlier)
	if newOutlier {
		if d != nil {
			d.stop()
		}
		d = nil
		if c.outlier != nil {
			d = newDetector(cs, c.outlier)
		}
		cs.detector.Store(d)
	}

	cs.mu.Lock()
	defer cs.mu.Unlock()
	if newOutlier {
		// The detector that ejected a host is gone, and with it the
		// timer that would bring it back: the hosts start over, as
		// Envoy's do when a cluster update rebuilds the cluster.
		for _, h := range cs.hosts {
			h.mu.Lock()
			h.outlier = outlierHost{}
			h.mu.Unlock()
			h.ejected.Store(false)
		}
		if cs.stats != nil {
			cs.stats.EjectionsActive.Set(0)
		}
	}
	cs.current = c
	if cs.checker != nil && !cs.checker.cfg.same(c.health) {
		cs.checker.stop(c.health == nil)
		cs.checker = nil
	}
	if cs.checker == nil && c.health != nil {
		cs.checker = newChecker(cs, c.health)
		// Envoy holds hosts out until their first check passes; a
		// cluster that has them all pending is in panic mode and
		// still sends to them.
		for _, h := range cs.hosts {
			h.hcFailed.Store(true)
		}
	}
	if !cs.resolver.sameConfig(c) {
		cs.resolver.stop()
		cs.resolver = nil
		cs.resolved = nil
		if c.dns != nil {
			cs.resolver = newResolver(cs, c)
			cs.resolved = cs.resolver.first()
			cs.resolver.start()
		}
	}
	cs.rebuildLocked()
}

// rebuild recomputes the current cluster's pick table after a host's
// health or the DNS answers changed.
func (cs *clusterState) rebuild() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.closed {
		cs.rebuildLocked()
	}
}

func (cs *clusterState) rebuildLocked() {
	c := cs.current
	eps := c.endpoints
	if c.dns != nil {
		eps = cs.resolved
	}
	live := make(map[string]*host, len(eps))
	for _, e := range eps {
		h := cs.hosts[e.Address]
		if h == nil {
			h = newHost(e.Address, cs.breakers, cs.settings, cs.stats, cs.dial)
			cs.hosts[e.Address] = h
			if cs.checker != nil {
				// Envoy holds new hosts out until their first check.
				h.hcFailed.Store(true)
			}
		}
		if e.host != h {
			// Only before the endpoint is published: a cluster's
			// endpoints keep their hosts while it is current.
			e.host = h
		}
		live[e.Address] = h
	}
	for addr, h := range cs.hosts {
		if live[addr] == nil {
			h.pool.closeIdle(true)
			delete(cs.hosts, addr)
		}
	}
	if cs.checker != nil {
		cs.checker.sync(live)
	}
	t := buildTable(eps, &c.lb, c.overprovisioning)
	c.tbl.Store(t)
	cs.stats.membership(t)
	if s := c.lb.slowStart; s != nil {
		if d, ok := s.next(live, time.Now()); ok && cs.ramp == nil {
			cs.ramp = time.AfterFunc(d, func() {
				cs.mu.Lock()
				cs.ramp = nil
				cs.mu.Unlock()
				cs.rebuild()
			})
		}
	}
}

// hostList returns the current hosts.
func (cs *clusterState) hostList() []*host {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]*host, 0, len(cs.hosts))
	for _, h := range cs.hosts {
		out = append(out, h)
	}
	return out
}

func (cs *clusterState) close() {
	if d := cs.detector.Load(); d != nil {
		d.stop()
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.closed = true
	if cs.ramp != nil {
		cs.ramp.Stop()
	}
	if cs.checker != nil {
		cs.checker.stop(false)
	}
	cs.resolver.stop()
	for _, h := range cs.hosts {
		h.pool.closeIdle(true)
	}
	cs.h2.CloseIdleConnections()
	cs.upgrade.CloseIdleConnections()
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
