package upstream

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestSlowStartFactor(t *testing.T) {
	s := &slowStart{window: 10 * time.Second, aggression: 1, minWeight: 0.1}
	for _, c := range []struct {
		age  time.Duration
		want float64
	}{
		{0, 0.1}, {500 * time.Millisecond, 0.1}, {5 * time.Second, 0.5}, {10 * time.Second, 1}, {time.Hour, 1},
	} {
		if got := s.factor(c.age); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("factor(%v) = %v, want %v", c.age, got, c.want)
		}
	}
	// Aggression 2 ramps faster early on: (t/window)^(1/2).
	s.aggression = 2
	if got := s.factor(2500 * time.Millisecond); math.Abs(got-0.5) > 1e-9 {
		t.Errorf("aggression 2: factor(2.5s) = %v, want 0.5", got)
	}
}

// A host that just joined gets its share scaled down; one in the
// cluster past the window, its full share.
func TestSlowStartPicks(t *testing.T) {
	now := time.Now()
	old := &Endpoint{Address: "10.0.0.1:80", Weight: 1, Healthy: true, host: &host{added: now.Add(-time.Hour)}}
	fresh := &Endpoint{Address: "10.0.0.2:80", Weight: 1, Healthy: true, host: &host{added: now}}
	cfg := &lbConfig{policy: clusterv3.Cluster_ROUND_ROBIN, panicThreshold: 50,
		slowStart: &slowStart{window: time.Minute, aggression: 1, minWeight: 0.1}}
	tbl := buildTable([]*Endpoint{old, fresh}, cfg, defaultOverprovisioning)
	n := map[string]int{}
	for range 1100 {
		n[tbl.pick(PickContext{}).Address]++
	}
	// Weights 1 and 0.1: the fresh host gets 1 pick in 11.
	if f := n[fresh.Address]; f < 80 || f > 120 {
		t.Errorf("the fresh host got %d of 1100 picks, want about 100", f)
	}
}

func TestSlowStartConfig(t *testing.T) {
	s, err := compileSlowStart("slow_start_config", &clusterv3.Cluster_SlowStartConfig{
		SlowStartWindow:  durationpb.New(30 * time.Second),
		Aggression:       &corev3.RuntimeDouble{DefaultValue: 1.5},
		MinWeightPercent: &typev3.Percent{Value: 20},
	})
	if err != nil || s.window != 30*time.Second || s.aggression != 1.5 || s.minWeight != 0.2 {
		t.Errorf("got %+v, %v", s, err)
	}
	if s, err := compileSlowStart("slow_start_config", &clusterv3.Cluster_SlowStartConfig{}); s != nil || err != nil {
		t.Errorf("no window: %+v, %v; want off", s, err)
	}
	for _, c := range []struct {
		cfg  *clusterv3.Cluster_SlowStartConfig
		want string
	}{
		{&clusterv3.Cluster_SlowStartConfig{SlowStartWindow: durationpb.New(time.Second), Aggression: &corev3.RuntimeDouble{DefaultValue: 0}}, "aggression"},
		{&clusterv3.Cluster_SlowStartConfig{SlowStartWindow: durationpb.New(time.Second), MinWeightPercent: &typev3.Percent{Value: 101}}, "min_weight_percent"},
	} {
		if _, err := compileSlowStart("slow_start_config", c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one naming %s", err, c.want)
		}
	}
}

// Through the Manager: a host added to a running cluster starts with
// part of its share, and the table is worked out again as it ramps up,
// until the window has passed and it has all of it.
func TestSlowStartRamp(t *testing.T) {
	m := NewManager()
	t.Cleanup(m.Close)
	cl := func(addrs ...string) *clusterv3.Cluster {
		c := &clusterv3.Cluster{
			Name:                 "c",
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
			LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
			LbConfig: &clusterv3.Cluster_RoundRobinLbConfig_{RoundRobinLbConfig: &clusterv3.Cluster_RoundRobinLbConfig{
				SlowStartConfig: &clusterv3.Cluster_SlowStartConfig{SlowStartWindow: durationpb.New(2 * time.Second)},
			}},
			LoadAssignment: staticAssignment("c", addrs...),
		}
		return c
	}
	if _, err := m.Build(map[string]*clusterv3.Cluster{"c": cl("10.0.0.1:80")}, nil); err != nil {
		t.Fatal(err)
	}
	// Let the first host leave its window.
	m.mu.Lock()
	cs := m.clusters["c"]
	m.mu.Unlock()
	cs.mu.Lock()
	cs.hosts["10.0.0.1:80"].added = time.Now().Add(-time.Hour)
	cs.mu.Unlock()
	built, err := m.Build(map[string]*clusterv3.Cluster{"c": cl("10.0.0.1:80", "10.0.0.2:80")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	share := func() float64 {
		n := 0
		for range 900 {
			if e, _ := built["c"].Pick(PickContext{}); e.Address == "10.0.0.2:80" {
				n++
			}
		}
		return float64(n) / 900
	}
	// Its first second counts as one: weight 1/2 against 1.
	if s := share(); s < 0.28 || s > 0.39 {
		t.Errorf("new host's share %.2f, want about 1/3", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for share() < 0.45 {
		if time.Now().After(deadline) {
			t.Fatal("the new host never got its full share")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// staticAssignment is a load assignment of addrs (host:port).
func staticAssignment(name string, addrs ...string) *endpointv3.ClusterLoadAssignment {
	var lbs []*endpointv3.LbEndpoint
	for _, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: ap.Addr().String(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())},
			}}},
		}}})
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}}
}
