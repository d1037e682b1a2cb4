package upstream_test

import (
	"net"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/upstream"
)

// httpCheck checks /healthz every 20ms; two failures make a host
// unhealthy, one success healthy again.
func httpCheck(c *clusterv3.Cluster) {
	c.HealthChecks = []*corev3.HealthCheck{{
		Timeout:            durationpb.New(time.Second),
		Interval:           durationpb.New(20 * time.Millisecond),
		NoTrafficInterval:  durationpb.New(20 * time.Millisecond),
		HealthyThreshold:   wrapperspb.UInt32(1),
		UnhealthyThreshold: wrapperspb.UInt32(2),
		HealthChecker: &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{
			Path: "/healthz",
		}},
	}}
}

func tcpCheck(c *clusterv3.Cluster) {
	httpCheck(c)
	c.HealthChecks[0].HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
}

// pickSet returns the addresses 200 picks reach.
func pickSet(t *testing.T, cl *upstream.Cluster) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for a := range picks(t, cl, 200, nil) {
		out[a] = true
	}
	return out
}

func TestHTTPHealthCheck(t *testing.T) {
	a := startBackend(t, backend.Options{Version: "a"})
	b := startBackend(t, backend.Options{Version: "b"})
	m, cl, st := build(t, cluster([]ep{{addr: a.Addr()}, {addr: b.Addr()}}, httpCheck))

	// New hosts wait for their first check; until then the cluster is
	// in panic mode and picks both anyway.
	eventually(t, 2*time.Second, "both hosts healthy", func() bool { return available(cl) == 2 })

	b.SetHealthy(false)
	eventually(t, 2*time.Second, "the failing host is still picked", func() bool {
		s := pickSet(t, cl)
		return len(s) == 1 && s[a.Addr()]
	})
	if got := st.Gauge("cluster.c.membership_healthy").Value(); got != 1 {
		t.Errorf("membership_healthy = %d, want 1", got)
	}
	// A new snapshot with the same cluster keeps what checks found.
	cl = rebuild(t, m, cluster([]ep{{addr: a.Addr()}, {addr: b.Addr()}}, httpCheck))
	if s := pickSet(t, cl); len(s) != 1 || !s[a.Addr()] {
		t.Fatalf("after a new snapshot picks reach %v, want only %s", s, a.Addr())
	}

	b.SetHealthy(true)
	eventually(t, 2*time.Second, "the recovered host never came back", func() bool { return available(cl) == 2 && len(pickSet(t, cl)) == 2 })
	if counter(st, "cluster.c.health_check.failure") == 0 || counter(st, "cluster.c.health_check.success") == 0 {
		t.Errorf("health_check counters: success %d failure %d", counter(st, "cluster.c.health_check.success"), counter(st, "cluster.c.health_check.failure"))
	}
}

func TestTCPHealthCheck(t *testing.T) {
	a := startBackend(t, backend.Options{Version: "a"})
	// b is a listener we close and reopen on the same port.
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bAddr := lb.Addr().String()
	go acceptAll(lb)
	_, cl, _ := build(t, cluster([]ep{{addr: a.Addr()}, {addr: bAddr}}, tcpCheck))
	eventually(t, 2*time.Second, "both hosts healthy", func() bool { return available(cl) == 2 })

	lb.Close()
	eventually(t, 2*time.Second, "the dead host is still picked", func() bool {
		s := pickSet(t, cl)
		return len(s) == 1 && s[a.Addr()]
	})

	lb, err = net.Listen("tcp", bAddr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", bAddr, err)
	}
	t.Cleanup(func() { lb.Close() })
	go acceptAll(lb)
	eventually(t, 2*time.Second, "the revived host never came back", func() bool { return available(cl) == 2 && len(pickSet(t, cl)) == 2 })
}

// available counts the endpoints that may take traffic outside panic
// mode.
func available(cl *upstream.Cluster) int {
	n := 0
	for _, e := range cl.Endpoints() {
		if e.Available() {
			n++
		}
	}
	return n
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// TestHealthCheckStopsWithCluster: removing the cluster stops its
// checks.
func TestHealthCheckStopsWithCluster(t *testing.T) {
	a := startBackend(t, backend.Options{Version: "a"})
	m, _, st := build(t, cluster([]ep{{addr: a.Addr()}}, httpCheck))
	eventually(t, 2*time.Second, "no check ran", func() bool { return counter(st, "cluster.c.health_check.attempt") > 0 })
	if _, err := m.Build(nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // a check under way finishes
	n := counter(st, "cluster.c.health_check.attempt")
	time.Sleep(100 * time.Millisecond)
	if got := counter(st, "cluster.c.health_check.attempt"); got != n {
		t.Errorf("%d checks ran after the cluster went away", got-n)
	}
}
