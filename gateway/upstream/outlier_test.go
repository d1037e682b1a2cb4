package upstream_test

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/upstream"
)

// outlier sets outlier_detection as Istio translates a DestinationRule
// with consecutive5xxErrors, interval, baseEjectionTime and
// maxEjectionPercent.
func outlier(consecutive uint32, interval, base time.Duration, maxPercent uint32) func(*clusterv3.Cluster) {
	return func(c *clusterv3.Cluster) {
		c.OutlierDetection = &clusterv3.OutlierDetection{
			Consecutive_5Xx:                    wrapperspb.UInt32(consecutive),
			EnforcingConsecutive_5Xx:           wrapperspb.UInt32(100),
			EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(0),
			EnforcingSuccessRate:               wrapperspb.UInt32(0),
			Interval:                           durationpb.New(interval),
			BaseEjectionTime:                   durationpb.New(base),
			MaxEjectionPercent:                 wrapperspb.UInt32(maxPercent),
		}
	}
}

// TestOutlierEjectsAndReturns: a backend answering 503 is ejected after
// three in a row, gets no traffic while ejected, and comes back after
// the ejection time once it recovers.
func TestOutlierEjectsAndReturns(t *testing.T) {
	good := startBackend(t, backend.Options{Version: "good"})
	bad := startBackend(t, backend.Options{Version: "bad", FailPercent: 100})
	const base = 200 * time.Millisecond
	_, cl, st := build(t, cluster([]ep{{addr: good.Addr()}, {addr: bad.Addr()}}, outlier(3, 20*time.Millisecond, base, 100)))

	// Timed from before the requests that eject the host, so that the
	// time measured is never shorter than the ejection.
	ejectedAt := time.Now()
	fails := 0
	for i := 0; i < 20; i++ {
		if _, status, _ := send(t.Context(), cl, nil); status == 503 {
			fails++
		}
	}
	// Round robin alternates: the bad host answers three 503s, then is
	// out.
	if fails != 3 {
		t.Errorf("%d requests failed, want 3 before the ejection", fails)
	}
	if got := counter(st, "cluster.c.outlier_detection.ejections_enforced_total"); got != 1 {
		t.Errorf("ejections_enforced_total = %d, want 1", got)
	}
	if got := counter(st, "cluster.c.outlier_detection.ejections_enforced_consecutive_5xx"); got != 1 {
		t.Errorf("ejections_enforced_consecutive_5xx = %d, want 1", got)
	}
	if got := st.Gauge("cluster.c.outlier_detection.ejections_active").Value(); got != 1 {
		t.Errorf("ejections_active = %d, want 1", got)
	}

	if err := bad.SetFailPercent(0); err != nil {
		t.Fatal(err)
	}
	before := bad.Requests()
	eventually(t, 2*time.Second, "the ejected host never came back", func() bool {
		send(t.Context(), cl, nil)
		return bad.Requests() > before
	})
	if d := time.Since(ejectedAt); d < base {
		t.Errorf("host returned after %v, before the %v ejection time", d, base)
	}
	if got := st.Gauge("cluster.c.outlier_detection.ejections_active").Value(); got != 0 {
		t.Errorf("ejections_active = %d after return, want 0", got)
	}
}

// TestOutlierEjectionTimeGrows: a host ejected again soon after its
// return stays out twice the base ejection time. (Each interval it
// stays healthy takes one off the multiplier, as in Envoy, so the
// second ejection must follow before the next sweep.)
func TestOutlierEjectionTimeGrows(t *testing.T) {
	good := startBackend(t, backend.Options{Version: "good"})
	bad := startBackend(t, backend.Options{Version: "bad", FailPercent: 100})
	const base = 150 * time.Millisecond
	_, cl, _ := build(t, cluster([]ep{{addr: good.Addr()}, {addr: bad.Addr()}}, outlier(2, 100*time.Millisecond, base, 100)))

	ejectedFor := func() time.Duration {
		t.Helper()
		// Timed from before the requests that eject the host, so
		// that the time measured is never shorter than the ejection.
		start := time.Now()
		// Round robin: four requests give the bad host two in a row.
		for i := 0; i < 4; i++ {
			send(t.Context(), cl, nil)
		}
		if !isEjected(cl, bad.Addr()) {
			t.Fatal("the bad host was not ejected")
		}
		for isEjected(cl, bad.Addr()) {
			if time.Since(start) > 3*time.Second {
				t.Fatal("the bad host never came back")
			}
			time.Sleep(time.Millisecond)
		}
		d := time.Since(start)
		// The pick table follows the host's state right after; two
		// round robin picks then reach both hosts.
		for !picked(cl, 2, bad.Addr()) {
			time.Sleep(100 * time.Microsecond)
		}
		return d
	}
	first := ejectedFor()
	second := ejectedFor()
	t.Logf("first ejection %v, second %v", first, second)
	if first < base || second < 2*base {
		t.Errorf("ejections lasted %v and %v, want at least %v and %v", first, second, base, 2*base)
	}
}

// picked says whether n picks reach addr.
func picked(cl *upstream.Cluster, n int, addr string) bool {
	for i := 0; i < n; i++ {
		if e, err := cl.Pick(upstream.PickContext{}); err == nil && e.Address == addr {
			return true
		}
	}
	return false
}

func isEjected(cl *upstream.Cluster, addr string) bool {
	for _, e := range cl.Endpoints() {
		if e.Address == addr {
			return !e.Available()
		}
	}
	return false
}

// TestOutlierMaxEjectionPercent: with the default 10% of two hosts no
// second host may go, though the first always may.
func TestOutlierMaxEjectionPercent(t *testing.T) {
	a := startBackend(t, backend.Options{Version: "a", FailPercent: 100})
	b := startBackend(t, backend.Options{Version: "b", FailPercent: 100})
	_, cl, st := build(t, cluster([]ep{{addr: a.Addr()}, {addr: b.Addr()}}, outlier(2, time.Second, time.Minute, 10)))
	for i := 0; i < 10; i++ {
		send(t.Context(), cl, nil)
	}
	if got := counter(st, "cluster.c.outlier_detection.ejections_enforced_total"); got != 1 {
		t.Errorf("ejections_enforced_total = %d, want 1", got)
	}
	if got := counter(st, "cluster.c.outlier_detection.ejections_overflow"); got == 0 {
		t.Errorf("ejections_overflow = 0, want the second ejection refused")
	}
	if _, err := cl.Pick(upstream.PickContext{}); err != nil {
		t.Errorf("Pick: %v; one host must stay", err)
	}
}

// TestOutlierSuccessRate: among five hosts with enough requests in an
// interval, one whose success rate is more than 1.9 standard deviations
// below the mean is ejected at the next sweep.
func TestOutlierSuccessRate(t *testing.T) {
	var eps []ep
	var bad *backend.Server
	for i := 0; i < 5; i++ {
		o := backend.Options{}
		if i == 4 {
			o.FailPercent = 100
		}
		b := startBackend(t, o)
		if i == 4 {
			bad = b
		}
		eps = append(eps, ep{addr: b.Addr()})
	}
	_, cl, st := build(t, cluster(eps, func(c *clusterv3.Cluster) {
		c.OutlierDetection = &clusterv3.OutlierDetection{
			Consecutive_5Xx:          wrapperspb.UInt32(1000),
			Interval:                 durationpb.New(300 * time.Millisecond),
			BaseEjectionTime:         durationpb.New(time.Minute),
			SuccessRateRequestVolume: wrapperspb.UInt32(10),
			MaxEjectionPercent:       wrapperspb.UInt32(100),
		}
	}))
	// Enough requests for every host within one sweep interval.
	for i := 0; i < 100; i++ {
		send(t.Context(), cl, nil)
	}
	eventually(t, 2*time.Second, "the failing host was not ejected", func() bool { return isEjected(cl, bad.Addr()) })
	if got := counter(st, "cluster.c.outlier_detection.ejections_enforced_success_rate"); got != 1 {
		t.Errorf("ejections_enforced_success_rate = %d, want 1", got)
	}
	if n := available(cl); n != 4 {
		t.Errorf("%d hosts available, want 4", n)
	}
}

// TestOutlierConfigChangeReturnsHosts: a cluster update that removes or
// changes outlier detection brings the hosts the old configuration
// ejected back at once, as Envoy's rebuilt cluster does; their ejection
// timer went with the old detector.
func TestOutlierConfigChangeReturnsHosts(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*clusterv3.Cluster)
	}{
		{"removed", nil},
		{"changed", outlier(5, time.Second, time.Hour, 100)},
	} {
		t.Run(c.name, func(t *testing.T) {
			good := startBackend(t, backend.Options{Version: "good"})
			bad := startBackend(t, backend.Options{Version: "bad", FailPercent: 100})
			eps := []ep{{addr: good.Addr()}, {addr: bad.Addr()}}
			m, cl, _ := build(t, cluster(eps, outlier(1, time.Hour, time.Hour, 100)))
			for range 4 {
				send(t.Context(), cl, nil)
			}
			before := bad.Requests()
			for range 4 {
				send(t.Context(), cl, nil)
			}
			if bad.Requests() != before {
				t.Fatal("the failing host was not ejected")
			}
			cl = rebuild(t, m, cluster(eps, c.edit))
			for range 4 {
				send(t.Context(), cl, nil)
			}
			if bad.Requests() == before {
				t.Error("the host ejected under the old configuration gets no requests after the update")
			}
		})
	}
}

// TestOutlierSplitLocalOrigin: with split_external_local_origin_errors,
// failures to connect eject a host after consecutive_local_origin_failure
// of them and do not count as 5xx; the upstream's own 503s count as 5xx
// only.
func TestOutlierSplitLocalOrigin(t *testing.T) {
	split := func(c *clusterv3.Cluster) {
		outlier(3, time.Hour, time.Hour, 100)(c)
		c.OutlierDetection.SplitExternalLocalOriginErrors = true
		c.OutlierDetection.ConsecutiveLocalOriginFailure = wrapperspb.UInt32(2)
	}
	good := startBackend(t, backend.Options{Version: "good"})
	dead := closedPort(t)
	_, cl, st := build(t, cluster([]ep{{addr: good.Addr()}, {addr: dead}}, split))
	for range 6 {
		send(t.Context(), cl, nil)
	}
	if got := counter(st, "cluster.c.outlier_detection.ejections_enforced_consecutive_local_origin_failure"); got != 1 {
		t.Errorf("local-origin ejections = %d, want 1 after two failed connections", got)
	}
	if got := counter(st, "cluster.c.outlier_detection.ejections_enforced_consecutive_5xx"); got != 0 {
		t.Errorf("5xx ejections = %d, want 0: failed connections are not 5xx", got)
	}

	bad := startBackend(t, backend.Options{Version: "bad", FailPercent: 100})
	_, cl, st = build(t, cluster([]ep{{addr: good.Addr()}, {addr: bad.Addr()}}, split))
	for range 10 {
		send(t.Context(), cl, nil)
	}
	if got := counter(st, "cluster.c.outlier_detection.ejections_enforced_consecutive_5xx"); got != 1 {
		t.Errorf("5xx ejections = %d, want 1 after three 503s", got)
	}
	if got := counter(st, "cluster.c.outlier_detection.ejections_enforced_consecutive_local_origin_failure"); got != 0 {
		t.Errorf("local-origin ejections = %d, want 0: 503s are the upstream's", got)
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	addr, err := backend.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
