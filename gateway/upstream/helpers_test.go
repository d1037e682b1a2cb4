package upstream_test

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/stats"
	"github.com/waygate/waygate/gateway/upstream"
)

// ep describes one lb_endpoint of a test cluster.
type ep struct {
	addr     string
	weight   uint32
	priority uint32
	zone     string
	unhealth bool
}

// cluster is a STATIC cluster named "c" over eps, with edit applied.
func cluster(eps []ep, edit func(*clusterv3.Cluster)) *clusterv3.Cluster {
	byLoc := map[[2]uint32]*endpointv3.LocalityLbEndpoints{}
	var order []*endpointv3.LocalityLbEndpoints
	for _, e := range eps {
		zoneKey := uint32(0)
		if e.zone != "" {
			zoneKey = uint32(e.zone[0])
		}
		k := [2]uint32{e.priority, zoneKey}
		le := byLoc[k]
		if le == nil {
			le = &endpointv3.LocalityLbEndpoints{Priority: e.priority, Locality: &corev3.Locality{Zone: e.zone}}
			byLoc[k] = le
			order = append(order, le)
		}
		ap := netip.MustParseAddrPort(e.addr)
		lb := &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address:       ap.Addr().String(),
				PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())},
			}}},
		}}}
		if e.weight > 0 {
			lb.LoadBalancingWeight = wrapperspb.UInt32(e.weight)
		}
		if e.unhealth {
			lb.HealthStatus = corev3.HealthStatus_UNHEALTHY
		}
		le.LbEndpoints = append(le.LbEndpoints, lb)
	}
	c := &clusterv3.Cluster{
		Name:                 "c",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment:       &endpointv3.ClusterLoadAssignment{ClusterName: "c", Endpoints: order},
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// addrs returns n distinct loopback addresses; nothing listens on them,
// which is enough for tests that only pick.
func addrs(n int) []ep {
	out := make([]ep, n)
	for i := range out {
		out[i] = ep{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i / 250), byte(1 + i%250)}), 9000).String()}
	}
	return out
}

// build compiles c in a fresh Manager with stats, closed at the end of
// the test.
func build(t testing.TB, c *clusterv3.Cluster) (*upstream.Manager, *upstream.Cluster, *stats.Store) {
	t.Helper()
	m := upstream.NewManager()
	m.Stats = stats.NewStore()
	t.Cleanup(m.Close)
	return m, rebuild(t, m, c), m.Stats
}

// rebuild compiles c again in m, as a new snapshot would.
func rebuild(t testing.TB, m *upstream.Manager, c *clusterv3.Cluster) *upstream.Cluster {
	t.Helper()
	cs, err := m.Build(map[string]*clusterv3.Cluster{c.GetName(): c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cs[c.GetName()]
}

// picks counts the endpoints n picks choose, by address.
func picks(t testing.TB, cl *upstream.Cluster, n int, pc func(i int) upstream.PickContext) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		var p upstream.PickContext
		if pc != nil {
			p = pc(i)
		}
		e, err := cl.Pick(p)
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		got[e.Address]++
	}
	return got
}

func startBackend(t testing.TB, o backend.Options) *backend.Server {
	t.Helper()
	if o.Service == "" {
		o.Service = "svc"
	}
	if o.Version == "" {
		o.Version = "v1"
	}
	b, err := backend.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// send makes one request as the router does: pick, send, report, and
// read the body. It returns the endpoint and the status (0 on error).
func send(ctx context.Context, cl *upstream.Cluster, header http.Header) (*upstream.Endpoint, int, error) {
	e, err := cl.Pick(upstream.PickContext{})
	if err != nil {
		return nil, 0, err
	}
	req := (&http.Request{
		Method: "GET", URL: &url.URL{Scheme: "http", Host: e.Address, Path: "/"},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: header.Clone(), Host: "svc",
	}).WithContext(ctx)
	if req.Header == nil {
		req.Header = http.Header{}
	}
	resp, err := cl.RoundTrip(e, req, false)
	if err != nil {
		cl.Report(e, 0, err)
		return e, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cl.Report(e, resp.StatusCode, nil)
	return e, resp.StatusCode, nil
}

// counter reads a stat by full name.
func counter(st *stats.Store, name string) uint64 { return st.Counter(name).Value() }

// eventually polls cond until it holds or the wait runs out.
func eventually(t testing.TB, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", wait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func percent(v float64) *typev3.Percent { return &typev3.Percent{Value: v} }
