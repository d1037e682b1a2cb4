// Package tcpproxy is Envoy's envoy.filters.network.tcp_proxy: it pipes a
// downstream connection to an endpoint of a cluster, with weighted
// clusters for TCP traffic shifting (Istio VirtualService `tcp` routes).
//
// See https://www.envoyproxy.io/docs/envoy/latest/configuration/listeners/network_filters/tcp_proxy_filter
package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/upstream"
)

// Config is a compiled TcpProxy.
type Config struct {
	StatPrefix  string
	clusters    []weighted
	total       uint64
	idleTimeout time.Duration
	attempts    int
	log         *slog.Logger
	// sniCluster is set when the chain's sni_cluster filter names the
	// upstream cluster after the connection's SNI (ClusterFor).
	sniCluster bool
}

// WithSNICluster returns a copy of c whose connections go to the
// cluster their TLS SNI names, as Envoy's envoy.filters.network.sni_cluster
// before a tcp_proxy: an Istio east-west gateway's AUTO_PASSTHROUGH
// chain, whose clients name outbound_.<port>_.<subset>_.<host>.
func (c *Config) WithSNICluster() *Config {
	cp := *c
	cp.sniCluster = true
	return &cp
}

// clusterFor is the cluster a connection goes to: its SNI under
// sni_cluster, else a pick by weight.
func (c *Config) clusterFor(info filters.Connection) string {
	if c.sniCluster && info.RequestedServerName != "" {
		return info.RequestedServerName
	}
	return c.pick()
}

type weighted struct {
	name   string
	weight uint64
}

// Compile validates a TcpProxy config.
func Compile(p *tcpv3.TcpProxy, log *slog.Logger) (*Config, error) {
	c := &Config{StatPrefix: p.GetStatPrefix(), idleTimeout: time.Hour, attempts: 1, log: log}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch s := p.GetClusterSpecifier().(type) {
	case *tcpv3.TcpProxy_Cluster:
		if s.Cluster == "" {
			return nil, errors.New("cluster: must not be empty")
		}
		c.clusters = []weighted{{name: s.Cluster, weight: 1}}
	case *tcpv3.TcpProxy_WeightedClusters:
		for i, wc := range s.WeightedClusters.GetClusters() {
			if wc.GetName() == "" {
				return nil, fmt.Errorf("weighted_clusters.clusters[%d].name: must not be empty", i)
			}
			if wc.GetWeight() == 0 {
				continue
			}
			c.clusters = append(c.clusters, weighted{name: wc.GetName(), weight: uint64(wc.GetWeight())})
		}
		if len(c.clusters) == 0 {
			return nil, errors.New("weighted_clusters: at least one cluster with a weight above 0 is required")
		}
	default:
		return nil, errors.New("cluster_specifier: cluster or weighted_clusters is required")
	}
	for _, w := range c.clusters {
		c.total += w.weight
	}
	if it := p.GetIdleTimeout(); it != nil {
		if err := it.CheckValid(); err != nil || it.AsDuration() < 0 {
			return nil, fmt.Errorf("idle_timeout: a duration of 0 (disabled) or more is required")
		}
		c.idleTimeout = it.AsDuration() // 0 disables
	}
	if m := p.GetMaxConnectAttempts(); m != nil {
		// Envoy's validation requires at least one attempt; with none,
		// Serve would have no upstream connection to pipe to.
		if m.GetValue() < 1 {
			return nil, errors.New("max_connect_attempts: must be at least 1")
		}
		c.attempts = int(m.GetValue())
	}
	return c, nil
}

// Clusters names the clusters the proxy may send to.
func (c *Config) Clusters() []string {
	out := make([]string, len(c.clusters))
	for i, w := range c.clusters {
		out[i] = w.name
	}
	return out
}

// pick chooses a cluster by weight.
func (c *Config) pick() string {
	if len(c.clusters) == 1 {
		return c.clusters[0].name
	}
	n := rand.Uint64N(c.total)
	for _, w := range c.clusters {
		if n < w.weight {
			return w.name
		}
		n -= w.weight
	}
	return c.clusters[len(c.clusters)-1].name
}

// Serve proxies down until either side closes. It owns down.
func (c *Config) Serve(ctx context.Context, down net.Conn, set upstream.Set) {
	c.serve(ctx, down, set, c.pick())
}

func (c *Config) serve(ctx context.Context, down net.Conn, set upstream.Set, name string) {
	defer down.Close()
	up, _ := c.connect(ctx, set, name)
	if up == nil {
		return
	}
	defer up.Close()
	// The listener cancels ctx when its drain time is over: the
	// connection ends then, as Envoy closes what outlives a drain.
	stop := context.AfterFunc(ctx, func() {
		down.Close()
		up.Close()
	})
	defer stop()
	pipe(down, up, c.idleTimeout)
}

// connect dials one of the endpoints of cluster name, trying up to
// max_connect_attempts endpoints. It returns nil when none answered.
func (c *Config) connect(ctx context.Context, set upstream.Set, name string) (net.Conn, string) {
	if set == nil {
		c.log.Warn("tcp proxy: no cluster set", "cluster", name)
		return nil, name
	}
	cl := set.Cluster(name)
	if cl == nil {
		c.log.Warn("tcp proxy: cluster not found", "cluster", name)
		return nil, name
	}
	var up net.Conn
	var err error
	for i := 0; i < c.attempts; i++ {
		var ep *upstream.Endpoint
		ep, err = cl.Pick(upstream.PickContext{})
		if err != nil {
			break
		}
		d := net.Dialer{Timeout: cl.ConnectTimeout}
		up, err = d.DialContext(ctx, "tcp", ep.Address)
		if err == nil {
			break
		}
	}
	if err != nil {
		c.log.Warn("tcp proxy: upstream connect failed", "cluster", name, "err", err)
		return nil, name
	}
	return up, name
}

// pipe copies both ways, half-closing each direction as it ends, and
// tears both down after idle time without traffic. Idle time counts
// traffic either way, as Envoy's idle_timeout does: a long upload with
// a silent upstream is not idle.
func pipe(a, b net.Conn, idle time.Duration) {
	var wg sync.WaitGroup
	wg.Add(2)
	var last atomic.Int64 // unix nanoseconds of the last read either way
	last.Store(time.Now().UnixNano())
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		if idle > 0 {
			_ = src.SetReadDeadline(time.Now().Add(idle))
		}
		for {
			n, err := src.Read(buf)
			if n > 0 {
				now := time.Now()
				last.Store(now.UnixNano())
				if idle > 0 {
					_ = src.SetReadDeadline(now.Add(idle))
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				var ne net.Error
				if idle > 0 && errors.As(err, &ne) && ne.Timeout() {
					// This way was quiet; the other may not have been.
					if at := time.Unix(0, last.Load()).Add(idle); time.Now().Before(at) {
						_ = src.SetReadDeadline(at)
						continue
					}
					// Idle both ways: end the whole connection.
					a.Close()
					b.Close()
				}
				break
			}
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}
