package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// ErrNoHealthyUpstream is returned by Pick when the cluster has no
// endpoint to send to; the router answers 503 "no healthy upstream" (UH).
var ErrNoHealthyUpstream = errors.New("no healthy upstream")

// Cluster is the compiled, immutable form of one Envoy Cluster with its
// endpoints, for one snapshot. What changes between snapshots — host
// health, ejections, DNS answers — is applied by swapping the pick table.
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

	kind             clusterv3.Cluster_DiscoveryType
	endpoints        []*Endpoint // as configured; STRICT_DNS names resolve later
	overprovisioning uint32
	lb               lbConfig
	limits           thresholds
	settings         poolSettings
	outlier          *outlierConfig
	health           *healthConfig
	dns              *dnsConfig
	transport        *transport // nil: plain text to every endpoint
	proxyProtocol    bool       // some endpoint's socket sends PROXY headers

	state *clusterState
	tbl   atomic.Pointer[table]
}

// Endpoints returns every endpoint, healthy or not.
func (c *Cluster) Endpoints() []*Endpoint {
	if t := c.tbl.Load(); t != nil {
		return t.all
	}
	return c.endpoints
}

// Pick chooses the endpoint for one request attempt: the priority
// level by its share of traffic, then the cluster's load balancer among
// the level's available hosts (all of them in panic mode).
func (c *Cluster) Pick(pc PickContext) (*Endpoint, error) {
	t := c.tbl.Load()
	if t == nil {
		return nil, ErrNoHealthyUpstream
	}
	ep := t.pick(pc)
	if ep == nil {
		return nil, ErrNoHealthyUpstream
	}
	return ep, nil
}

// RoundTrip sends req to ep, which Pick returned; req.URL must already
// name ep. downstreamHTTP2 selects the protocol for clusters that follow
// the downstream's. The request counts against max_requests, and on
// HTTP/1.1 waits for a connection within max_connections and
// max_pending_requests, until its body is closed; ErrOverflow says a
// circuit breaker refused it.
func (c *Cluster) RoundTrip(ep *Endpoint, req *http.Request, downstreamHTTP2 bool) (*http.Response, error) {
	return c.Send(req.Context(), ep, req, downstreamHTTP2, time.Time{})
}

// Send is RoundTrip with the request's context given apart from req and
// a deadline (zero for none) that bounds the wait for a connection, the
// response head and the response body. A request that ran out of time
// fails with context.DeadlineExceeded, from Send or from the body's
// Read. Over the HTTP/1.1 pool the deadline is the connection's read
// deadline and ctx is watched with context.AfterFunc, so a request
// costs no context, timer or Request copy of its own.
func (c *Cluster) Send(ctx context.Context, ep *Endpoint, req *http.Request, downstreamHTTP2 bool, deadline time.Time) (*http.Response, error) {
	st := c.state
	if st == nil || ep.host == nil {
		return nil, fmt.Errorf("cluster %q: endpoint %s was not picked from a cluster built by a Manager", c.Name, ep.Address)
	}
	b := st.breakers
	if !acquire(&b.requests, b.limits.Load().maxRequests) {
		c.Stats.Count(RqPendingOverflow)
		return nil, ErrOverflow
	}
	b.started()
	st.used.Store(true)
	h := ep.host
	h.active.Add(1)
	if c.Protocol == HTTP2 || (c.Protocol == FollowDownstream && downstreamHTTP2) {
		cancel := context.CancelFunc(func() {})
		if !deadline.IsZero() {
			ctx, cancel = context.WithDeadline(ctx, deadline)
		}
		if ctx != req.Context() {
			req = req.WithContext(ctx)
		}
		resp, err := st.h2.RoundTrip(req)
		if err != nil {
			cancel()
			h.requestDone(b)
			return nil, err
		}
		resp.Body = &streamBody{ReadCloser: resp.Body, h: h, b: b, cancel: cancel}
		return resp, nil
	}
	resp, err := h.pool.roundTrip(ctx, req, deadline)
	if err != nil {
		h.requestDone(b)
	}
	return resp, err
}

// streamBody ends an HTTP/2 request's accounting when its response is
// done.
type streamBody struct {
	io.ReadCloser
	h      *host
	b      *breakers
	cancel context.CancelFunc // ends Send's deadline context
	once   sync.Once
}

func (s *streamBody) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if err != nil {
		s.once.Do(s.done)
	}
	return n, err
}

func (s *streamBody) Close() error {
	err := s.ReadCloser.Close()
	s.once.Do(s.done)
	return err
}

func (s *streamBody) done() {
	s.h.requestDone(s.b)
	s.cancel()
}

// Report tells outlier detection how an attempt on ep ended: its
// response status, or err when there was none (status 0 is then taken
// as 503, a 504 status as a timeout; with split_external_local_origin_errors
// both are local-origin failures), as Envoy's router reports to the
// host's outlier detector.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/outlier
func (c *Cluster) Report(ep *Endpoint, status int, err error) {
	d := c.state.detector.Load()
	if d == nil || ep == nil || ep.host == nil {
		return
	}
	d.report(ep.host, status, err != nil)
}

// StartRetry takes one retry from the cluster's max_retries (or its
// retry budget); when none is left it counts upstream_rq_retry_overflow
// and returns false, and the attempt's outcome stands. A true return must be paired with
// EndRetry when the retried attempt ends.
func (c *Cluster) StartRetry() bool {
	b := c.state.breakers
	if !acquire(&b.retries, b.maxRetries()) {
		c.Stats.Count(RqRetryOverflow)
		return false
	}
	return true
}

// EndRetry returns a retry taken by StartRetry.
func (c *Cluster) EndRetry() { c.state.breakers.retries.Add(-1) }

// Transport returns a plain HTTP/1.1 transport, for upgraded
// connections (WebSocket) that leave the pool once switched.
func (c *Cluster) Transport() http.RoundTripper { return c.state.upgrade }

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

// compile builds a Cluster. cla is the EDS assignment for EDS clusters
// (nil until it arrives: the cluster then has no endpoints).
func compile(c *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment) (*Cluster, error) {
	out := &Cluster{Name: c.GetName(), Proto: c, ConnectTimeout: 5 * time.Second, kind: c.GetType()}
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
		out.overprovisioning = overprovisioningOf(cla)
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
		// LOGICAL_DNS keeps the name in the address and resolves it
		// when dialing; STRICT_DNS resolves it into one endpoint per
		// address (dns.go).
		if out.endpoints, err = compileAssignment(c.GetLoadAssignment(), "load_assignment"); err != nil {
			return nil, err
		}
		out.overprovisioning = overprovisioningOf(c.GetLoadAssignment())
		if t == clusterv3.Cluster_STRICT_DNS {
			if out.dns, err = compileDNS(c); err != nil {
				return nil, err
			}
		}
	case clusterv3.Cluster_ORIGINAL_DST:
		// istiod makes one for every ServiceEntry with resolution NONE,
		// so a gateway must take them for the rest of the update to
		// apply. It has no endpoints here: a gateway's downstream
		// connections are addressed to the gateway itself, so their
		// original destination is the gateway (Envoy would connect to
		// itself), and the x-envoy-original-dst-host header is not
		// read. A request routed to one gets 503, no healthy upstream.
		if p := c.GetLbPolicy(); p != clusterv3.Cluster_CLUSTER_PROVIDED && p != clusterv3.Cluster_ROUND_ROBIN {
			return nil, fmt.Errorf("lb_policy: an ORIGINAL_DST cluster takes CLUSTER_PROVIDED, not %v", p)
		}
	default:
		if c.GetClusterType() != nil {
			return nil, fmt.Errorf("cluster_type: custom cluster type %q is not supported", c.GetClusterType().GetName())
		}
		return nil, fmt.Errorf("type: %v is not supported", t)
	}
	if c.GetType() == clusterv3.Cluster_ORIGINAL_DST {
		out.lb = lbConfig{policy: clusterv3.Cluster_ROUND_ROBIN}
	} else if out.lb, err = compileLB(c); err != nil {
		return nil, err
	}
	if out.limits, err = compileThresholds(c.GetCircuitBreakers()); err != nil {
		return nil, err
	}
	if out.settings, err = settingsOf(c, out.ConnectTimeout); err != nil {
		return nil, err
	}
	if out.outlier, err = compileOutlier(c.GetOutlierDetection()); err != nil {
		return nil, err
	}
	if out.health, err = compileHealth(c, out.Name); err != nil {
		return nil, err
	}
	return out, nil
}

// Hashing says whether the cluster balances by the route's hash
// (RING_HASH, MAGLEV), so the router computes it only then.
func (c *Cluster) Hashing() bool { return c.lb.hashing() }
