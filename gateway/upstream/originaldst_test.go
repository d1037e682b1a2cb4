package upstream_test

import (
	"errors"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/stats"
	"github.com/waygate/waygate/gateway/upstream"
)

// An ORIGINAL_DST cluster, as istiod makes for a ServiceEntry with
// resolution NONE, is accepted beside the others, and a request routed
// to it gets 503: a gateway has no original destination to send it to.
func TestOriginalDstCluster(t *testing.T) {
	passthrough := &clusterv3.Cluster{
		Name:                 "c",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
	}
	b := startBackend(t, backend.Options{})
	m := upstream.NewManager()
	m.Stats = stats.NewStore()
	t.Cleanup(m.Close)
	built, err := m.Build(map[string]*clusterv3.Cluster{"c": passthrough, "other": cluster([]ep{{addr: b.Addr()}}, nil)}, nil)
	if err != nil {
		t.Fatalf("the update was refused: %v", err)
	}
	if _, err := built["c"].Pick(upstream.PickContext{}); !errors.Is(err, upstream.ErrNoHealthyUpstream) {
		t.Errorf("pick: %v, want no healthy upstream", err)
	}

	m2 := upstream.NewManager()
	t.Cleanup(m2.Close)
	gw := serve(t, m2, passthrough, nil)
	resp, err := hcmtest.Client().Get(gw + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}

	// Only the cluster-provided balancer fits it.
	passthrough.LbPolicy = clusterv3.Cluster_MAGLEV
	if _, err := upstream.NewManager().Build(map[string]*clusterv3.Cluster{"c": passthrough}, nil); err == nil {
		t.Error("ORIGINAL_DST with MAGLEV was accepted")
	}
}
