package tcpproxy

import (
	"strings"
	"testing"
	"time"

	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestCompile(t *testing.T) {
	single := func(name string) *tcpv3.TcpProxy {
		return &tcpv3.TcpProxy{StatPrefix: "tcp", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: name}}
	}
	weighted := func(ws ...*tcpv3.TcpProxy_WeightedCluster_ClusterWeight) *tcpv3.TcpProxy {
		return &tcpv3.TcpProxy{StatPrefix: "tcp", ClusterSpecifier: &tcpv3.TcpProxy_WeightedClusters{
			WeightedClusters: &tcpv3.TcpProxy_WeightedCluster{Clusters: ws},
		}}
	}
	cw := func(name string, w uint32) *tcpv3.TcpProxy_WeightedCluster_ClusterWeight {
		return &tcpv3.TcpProxy_WeightedCluster_ClusterWeight{Name: name, Weight: w}
	}
	tests := []struct {
		name     string
		proxy    *tcpv3.TcpProxy
		edit     func(*tcpv3.TcpProxy)
		clusters []string
		idle     time.Duration
		attempts int
		err      string
	}{
		{name: "single cluster", proxy: single("a"), clusters: []string{"a"}, idle: time.Hour, attempts: 1},
		{name: "weighted clusters", proxy: weighted(cw("a", 80), cw("b", 20)), clusters: []string{"a", "b"}, idle: time.Hour, attempts: 1},
		{name: "zero weights are left out", proxy: weighted(cw("a", 0), cw("b", 1)), clusters: []string{"b"}, idle: time.Hour, attempts: 1},
		{name: "idle timeout", proxy: single("a"), edit: func(p *tcpv3.TcpProxy) { p.IdleTimeout = durationpb.New(3 * time.Second) }, clusters: []string{"a"}, idle: 3 * time.Second, attempts: 1},
		{name: "idle timeout 0 disables it", proxy: single("a"), edit: func(p *tcpv3.TcpProxy) { p.IdleTimeout = durationpb.New(0) }, clusters: []string{"a"}, idle: 0, attempts: 1},
		{name: "connect attempts", proxy: single("a"), edit: func(p *tcpv3.TcpProxy) { p.MaxConnectAttempts = wrapperspb.UInt32(3) }, clusters: []string{"a"}, idle: time.Hour, attempts: 3},
		{name: "zero connect attempts", proxy: single("a"), edit: func(p *tcpv3.TcpProxy) { p.MaxConnectAttempts = wrapperspb.UInt32(0) }, err: "max_connect_attempts: must be at least 1"},
		{name: "negative idle timeout", proxy: single("a"), edit: func(p *tcpv3.TcpProxy) { p.IdleTimeout = durationpb.New(-time.Second) }, err: "idle_timeout"},
		{name: "empty cluster", proxy: single(""), err: "cluster: must not be empty"},
		{name: "weighted cluster without a name", proxy: weighted(cw("", 1)), err: "weighted_clusters.clusters[0].name: must not be empty"},
		{name: "all weights zero", proxy: weighted(cw("a", 0)), err: "at least one cluster with a weight above 0"},
		{name: "no cluster", proxy: &tcpv3.TcpProxy{StatPrefix: "tcp"}, err: "cluster_specifier: cluster or weighted_clusters is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.edit != nil {
				tt.edit(tt.proxy)
			}
			c, err := Compile(tt.proxy, nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(c.Clusters(), ","); got != strings.Join(tt.clusters, ",") {
				t.Errorf("clusters %s, want %s", got, strings.Join(tt.clusters, ","))
			}
			if c.idleTimeout != tt.idle || c.attempts != tt.attempts {
				t.Errorf("idle %v attempts %d, want %v %d", c.idleTimeout, c.attempts, tt.idle, tt.attempts)
			}
		})
	}
}

func TestPickFollowsWeights(t *testing.T) {
	p := &tcpv3.TcpProxy{ClusterSpecifier: &tcpv3.TcpProxy_WeightedClusters{WeightedClusters: &tcpv3.TcpProxy_WeightedCluster{
		Clusters: []*tcpv3.TcpProxy_WeightedCluster_ClusterWeight{{Name: "a", Weight: 1}, {Name: "b", Weight: 3}},
	}}}
	c, err := Compile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i := 0; i < 10000; i++ {
		counts[c.pick()]++
	}
	// 25% of 10000 has a standard deviation of about 43.
	if counts["a"] < 2300 || counts["a"] > 2700 || counts["a"]+counts["b"] != 10000 {
		t.Errorf("picks %v, want about 2500 a and 7500 b", counts)
	}
}
