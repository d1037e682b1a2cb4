package upstream

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"
)

// dnsConfig is how a STRICT_DNS cluster resolves its names.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/service_discovery#strict-dns
type dnsConfig struct {
	refresh time.Duration
	family  clusterv3.Cluster_DnsLookupFamily
}

func compileDNS(c *clusterv3.Cluster) (*dnsConfig, error) {
	d := &dnsConfig{refresh: 5 * time.Second, family: c.GetDnsLookupFamily()}
	//lint:ignore SA1019 still the field Istio sets.
	if r := c.GetDnsRefreshRate(); r != nil { //nolint:staticcheck
		if r.CheckValid() != nil || r.AsDuration() < time.Millisecond {
			return nil, fmt.Errorf("dns_refresh_rate: must be at least 1ms")
		}
		d.refresh = r.AsDuration()
	}
	return d, nil
}

// resolver re-resolves a STRICT_DNS cluster's names every refresh
// interval into one endpoint per address, each carrying the weight,
// priority and locality of the lb_endpoint its name came from.
type resolver struct {
	cs    *clusterState
	cfg   *dnsConfig
	proto *clusterv3.Cluster
	eps   []*Endpoint // the configured, unresolved endpoints
	quit  chan struct{}
	done  chan struct{}
}

func newResolver(cs *clusterState, c *Cluster) *resolver {
	return &resolver{cs: cs, cfg: c.dns, proto: c.Proto, eps: c.endpoints, quit: make(chan struct{}), done: make(chan struct{})}
}

// sameConfig says whether r resolves what c asks for.
func (r *resolver) sameConfig(c *Cluster) bool {
	if r == nil || c.dns == nil {
		return r == nil && c.dns == nil
	}
	return *r.cfg == *c.dns && proto.Equal(r.proto.GetLoadAssignment(), c.Proto.GetLoadAssignment())
}

// first resolves once, bounded, so a new cluster starts with its
// endpoints as Envoy's does after warming.
func (r *resolver) first() []*Endpoint {
	ctx, cancel := context.WithTimeout(context.Background(), min(r.cfg.refresh, 2*time.Second))
	defer cancel()
	eps, _ := r.resolve(ctx)
	return eps
}

func (r *resolver) start() { go r.run() }

func (r *resolver) stop() {
	if r == nil {
		return
	}
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
}

func (r *resolver) run() {
	defer close(r.done)
	t := time.NewTicker(r.cfg.refresh)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.refresh)
		eps, err := r.resolve(ctx)
		cancel()
		if err != nil {
			// Envoy keeps the last answer when a refresh fails.
			r.cs.m.log().Warn("dns resolution failed", "cluster", r.cs.name, "err", err)
			continue
		}
		r.cs.mu.Lock()
		if r.cs.resolver == r && !sameAddresses(r.cs.resolved, eps) {
			r.cs.resolved = eps
			r.cs.rebuildLocked()
		}
		r.cs.mu.Unlock()
	}
}

func (r *resolver) resolve(ctx context.Context) ([]*Endpoint, error) {
	var out []*Endpoint
	for _, e := range r.eps {
		name, port, err := net.SplitHostPort(e.Address)
		if err != nil {
			return nil, err
		}
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", name, err)
		}
		for _, a := range pickFamily(addrs, r.cfg.family) {
			cp := *e
			cp.host = nil
			cp.Address = net.JoinHostPort(a.Unmap().String(), port)
			out = append(out, &cp)
		}
	}
	return out, nil
}

// pickFamily applies dns_lookup_family: AUTO prefers IPv6 and falls
// back to IPv4, V4_PREFERRED the reverse, ALL keeps both.
func pickFamily(addrs []netip.Addr, f clusterv3.Cluster_DnsLookupFamily) []netip.Addr {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Unmap().Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	switch f {
	case clusterv3.Cluster_V4_ONLY:
		return v4
	case clusterv3.Cluster_V6_ONLY:
		return v6
	case clusterv3.Cluster_V4_PREFERRED:
		if len(v4) > 0 {
			return v4
		}
		return v6
	case clusterv3.Cluster_ALL:
		return append(v4, v6...)
	}
	if len(v6) > 0 {
		return v6
	}
	return v4
}

func sameAddresses(a, b []*Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Address != b[i].Address {
			return false
		}
	}
	return true
}
