package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// ErrNoHealthyUpstream is returned by Pick when the cluster has no
// endpoint to send to; the router answers 503 "no healthy upstream" (UH).
var ErrNoHealthyUpstream = errors.New("no healthy upstream")

// Cluster is the compiled, immutable form of one Envoy Cluster with its
// endpoints, for one snapshot.
type Cluster struct {
	Name string
	// Proto is the accepted resource, for config dumps.
	Proto *clusterv3.Cluster
	// ConnectTimeout bounds dialing an endpoint (Envoy's default is 5s).
	ConnectTimeout time.Duration
	// Protocol is the upstream HTTP protocol the cluster asks for.
	Protocol Protocol
	// EDSName is the ClusterLoadAssignment name an EDS cluster waits for,
	// "" for clusters with inline endpoints.
	EDSName string
	// Stats are the cluster's stats; nil when the gateway keeps none.
	Stats *ClusterStats

	endpoints []*Endpoint
	healthy   []*Endpoint
	lb        balancer
	pool      *pool
}

// Endpoints returns every endpoint, healthy or not.
func (c *Cluster) Endpoints() []*Endpoint { return c.endpoints }

// Pick chooses the endpoint for one request attempt.
func (c *Cluster) Pick() (*Endpoint, error) {
	if len(c.healthy) == 0 {
		return nil, ErrNoHealthyUpstream
	}
	return c.lb.pick(c.healthy), nil
}

// RoundTrip sends req to ep over the cluster's pool. req.URL must already
// name ep; downstreamHTTP2 selects the protocol for clusters that follow
// the downstream's.
func (c *Cluster) RoundTrip(req *http.Request, downstreamHTTP2 bool) (*http.Response, error) {
	h2 := c.Protocol == HTTP2 || (c.Protocol == FollowDownstream && downstreamHTTP2)
	if h2 {
		return c.pool.h2.RoundTrip(req)
	}
	return c.pool.h1.RoundTrip(req)
}

// Transport returns the HTTP/1.1 transport, for callers (filters calling
// out, mirrors) that want a plain http.RoundTripper.
func (c *Cluster) Transport() http.RoundTripper { return c.pool.h1 }

// Protocol is the upstream HTTP protocol of a cluster.
type Protocol uint8

const (
	// HTTP1 is HTTP/1.1, Envoy's default.
	HTTP1 Protocol = iota
	// HTTP2 is HTTP/2 (h2c on plaintext).
	HTTP2
	// FollowDownstream uses the downstream request's protocol
	// (use_downstream_protocol_config).
	FollowDownstream
)

func (p Protocol) String() string {
	switch p {
	case HTTP2:
		return "HTTP/2"
	case FollowDownstream:
		return "downstream"
	}
	return "HTTP/1.1"
}

// balancer picks one of a non-empty set of healthy endpoints.
type balancer interface {
	pick(eps []*Endpoint) *Endpoint
}

// compile builds a Cluster. cla is the EDS assignment for EDS clusters
// (nil until it arrives: the cluster then has no endpoints).
func compile(c *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment) (*Cluster, error) {
	out := &Cluster{Name: c.GetName(), Proto: c, ConnectTimeout: 5 * time.Second}
	if out.Name == "" {
		return nil, errors.New("name: must not be empty")
	}
	if ct := c.GetConnectTimeout(); ct != nil {
		if err := ct.CheckValid(); err != nil {
			return nil, fmt.Errorf("connect_timeout: %v", err)
		}
		if d := ct.AsDuration(); d > 0 {
			out.ConnectTimeout = d
		}
	}
	p, err := protocolOf(c)
	if err != nil {
		return nil, err
	}
	out.Protocol = p

	switch t := c.GetType(); t {
	case clusterv3.Cluster_EDS:
		out.EDSName = c.GetEdsClusterConfig().GetServiceName()
		if out.EDSName == "" {
			out.EDSName = c.GetName()
		}
		if out.endpoints, err = compileAssignment(cla, "load_assignment"); err != nil {
			return nil, err
		}
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
		// DNS names stay in the address and are resolved when dialing,
		// which is LOGICAL_DNS behavior; per-address STRICT_DNS balancing
		// belongs with the DNS resolver of the cluster manager.
		if out.endpoints, err = compileAssignment(c.GetLoadAssignment(), "load_assignment"); err != nil {
			return nil, err
		}
	case clusterv3.Cluster_ORIGINAL_DST:
		return nil, errors.New("type: ORIGINAL_DST clusters are not supported by a gateway")
	default:
		if c.GetClusterType() != nil {
			return nil, fmt.Errorf("cluster_type: custom cluster type %q is not supported", c.GetClusterType().GetName())
		}
		return nil, fmt.Errorf("type: %v is not supported", t)
	}
	for _, ep := range out.endpoints {
		if ep.Healthy {
			out.healthy = append(out.healthy, ep)
		}
	}
	switch lb := c.GetLbPolicy(); lb {
	case clusterv3.Cluster_ROUND_ROBIN, clusterv3.Cluster_LEAST_REQUEST, clusterv3.Cluster_RANDOM,
		clusterv3.Cluster_RING_HASH, clusterv3.Cluster_MAGLEV:
		out.lb = newRoundRobin(out.healthy)
	case clusterv3.Cluster_CLUSTER_PROVIDED:
		out.lb = newRoundRobin(out.healthy)
	default:
		return nil, fmt.Errorf("lb_policy: %v is not supported", lb)
	}
	return out, nil
}

// roundRobin is weighted round robin: with equal weights a plain
// rotation, otherwise a rotation over a schedule where each endpoint
// appears weight times (weights are reduced by their gcd).
type roundRobin struct {
	next     atomic.Uint64
	schedule []int
}

func newRoundRobin(eps []*Endpoint) *roundRobin {
	rr := &roundRobin{}
	equal := true
	g := uint32(0)
	for _, e := range eps {
		if e.Weight != eps[0].Weight {
			equal = false
		}
		g = gcd(g, e.Weight)
	}
	if equal || g == 0 {
		return rr
	}
	total := 0
	for _, e := range eps {
		total += int(e.Weight / g)
	}
	if total > 1<<16 {
		return rr // pathological weights: fall back to rotation
	}
	// Interleave so heavy endpoints are spread, not bunched.
	cur := make([]int, len(eps))
	for n := 0; n < total; n++ {
		best := 0
		for i, e := range eps {
			cur[i] += int(e.Weight / g)
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		rr.schedule = append(rr.schedule, best)
	}
	return rr
}

func (r *roundRobin) pick(eps []*Endpoint) *Endpoint {
	n := r.next.Add(1) - 1
	if len(r.schedule) > 0 {
		return eps[r.schedule[n%uint64(len(r.schedule))]]
	}
	return eps[n%uint64(len(eps))]
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
