package snapshot

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/upstream"
)

// warmCluster is a cluster of the given type; an EDS one asks for the
// assignment service (its own name if "") and waits timeout for it (nil:
// the default).
func warmCluster(name string, typ clusterv3.Cluster_DiscoveryType, service string, timeout *durationpb.Duration) *clusterv3.Cluster {
	c := &clusterv3.Cluster{Name: name, ConnectTimeout: durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: typ}}
	switch typ {
	case clusterv3.Cluster_EDS:
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{ServiceName: service, EdsConfig: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}, InitialFetchTimeout: timeout}}
	default:
		c.LoadAssignment = &endpointv3.ClusterLoadAssignment{ClusterName: name}
	}
	return c
}

// warmListener is an HTTP listener on an ephemeral loopback port with an
// inline route table, so only clusters can hold it.
func warmListener(t *testing.T, name string) *anypb.Any {
	h := &hcmv3.HttpConnectionManager{
		StatPrefix:     name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{Name: name}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
	return mustAny(t, &listenerv3.Listener{
		Name: name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "hcm",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}}}}},
	})
}

type warmStep struct {
	typeURL string
	res     map[string]any // *clusterv3.Cluster, *endpointv3.ClusterLoadAssignment or "listener"
}

// Listeners wait for the initial cluster warm-up, as Envoy's are only
// initialized once the clusters of the first CDS response have their
// endpoints: the port stays closed and the reason names the clusters
// waited for. Clusters without EDS, an empty CDS, an empty assignment,
// a cluster removed while it warms and clusters added after the warm-up
// hold nothing.
func TestListenersWaitForInitialClusterWarmup(t *testing.T) {
	eds := func(name, service string) *clusterv3.Cluster {
		return warmCluster(name, clusterv3.Cluster_EDS, service, nil)
	}
	cla := func(name string) *endpointv3.ClusterLoadAssignment {
		return &endpointv3.ClusterLoadAssignment{ClusterName: name}
	}
	lds := warmStep{resourcev3.ListenerType, map[string]any{"l": "listener"}}
	cases := []struct {
		name  string
		steps []warmStep
		// wait is the Warming reason expected ("" : the listener serves).
		wait string
	}{
		{"no clusters", []warmStep{{resourcev3.ClusterType, nil}, lds}, ""},
		{"no CDS yet", []warmStep{lds}, ""},
		{"static and DNS clusters", []warmStep{{resourcev3.ClusterType, map[string]any{
			"s": warmCluster("s", clusterv3.Cluster_STATIC, "", nil),
			"d": warmCluster("d", clusterv3.Cluster_STRICT_DNS, "", nil)}}, lds}, ""},
		{"EDS without endpoints", []warmStep{{resourcev3.ClusterType, map[string]any{
			"a": eds("a", ""), "b": eds("b", ""), "s": warmCluster("s", clusterv3.Cluster_STATIC, "", nil)}}, lds,
			{resourcev3.EndpointType, map[string]any{"b": cla("b")}}},
			`waiting for the initial cluster warm-up: endpoints of cluster "a"`},
		{"listeners before clusters", []warmStep{lds, {resourcev3.ClusterType, map[string]any{}}, lds,
			{resourcev3.ClusterType, map[string]any{"a": eds("a", "")}}, lds}, ""},
		{"both missing", []warmStep{{resourcev3.ClusterType, map[string]any{"a": eds("a", ""), "b": eds("b", "")}}, lds},
			`waiting for the initial cluster warm-up: endpoints of cluster "a", "b"`},
		{"endpoints arrive", []warmStep{{resourcev3.ClusterType, map[string]any{"a": eds("a", ""), "b": eds("b", "")}}, lds,
			{resourcev3.EndpointType, map[string]any{"a": cla("a"), "b": cla("b")}}}, ""},
		{"endpoints before listeners", []warmStep{{resourcev3.ClusterType, map[string]any{"a": eds("a", "")}},
			{resourcev3.EndpointType, map[string]any{"a": cla("a")}}, lds}, ""},
		{"service name", []warmStep{{resourcev3.ClusterType, map[string]any{"a": eds("a", "svc")}}, lds,
			{resourcev3.EndpointType, map[string]any{"a": cla("a")}}},
			`waiting for the initial cluster warm-up: endpoints of cluster "a"`},
		{"service name arrives", []warmStep{{resourcev3.ClusterType, map[string]any{"a": eds("a", "svc")}}, lds,
			{resourcev3.EndpointType, map[string]any{"svc": cla("svc")}}}, ""},
		{"cluster removed while warming", []warmStep{{resourcev3.ClusterType, map[string]any{"a": eds("a", "")}}, lds,
			{resourcev3.ClusterType, map[string]any{}}}, ""},
		{"cluster added after the warm-up", []warmStep{{resourcev3.ClusterType, map[string]any{"a": eds("a", "")}},
			{resourcev3.EndpointType, map[string]any{"a": cla("a")}},
			{resourcev3.ClusterType, map[string]any{"a": eds("a", ""), "b": eds("b", "")}}, lds}, ""},
		{"cluster added while warming", []warmStep{{resourcev3.ClusterType, map[string]any{"a": eds("a", "")}}, lds,
			{resourcev3.ClusterType, map[string]any{"a": eds("a", ""), "b": eds("b", "")}},
			{resourcev3.EndpointType, map[string]any{"a": cla("a")}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newWarmBuilder(t)
			for _, st := range tc.steps {
				res := map[string]*anypb.Any{}
				for name, r := range st.res {
					if r == "listener" {
						res[name] = warmListener(t, name)
						continue
					}
					res[name] = mustAny(t, r.(proto.Message))
				}
				if err := b.Apply(st.typeURL, res); err != nil {
					t.Fatalf("apply %s: %v", st.typeURL, err)
				}
			}
			checkWarm(t, b, tc.wait)
		})
	}
}

// The wait for a cluster's endpoints ends at its eds_config's
// initial_fetch_timeout; 0 waits for ever.
func TestInitialClusterWarmupTimesOut(t *testing.T) {
	b := newWarmBuilder(t)
	cs := map[string]*anypb.Any{
		"fast":    mustAny(t, warmCluster("fast", clusterv3.Cluster_EDS, "", durationpb.New(150*time.Millisecond))),
		"patient": mustAny(t, warmCluster("patient", clusterv3.Cluster_EDS, "", durationpb.New(0))),
	}
	if err := b.Apply(resourcev3.ClusterType, cs); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"l": warmListener(t, "l")}); err != nil {
		t.Fatal(err)
	}
	checkWarm(t, b, `waiting for the initial cluster warm-up: endpoints of cluster "fast", "patient"`)
	time.Sleep(400 * time.Millisecond)
	checkWarm(t, b, `waiting for the initial cluster warm-up: endpoints of cluster "patient"`)
	if err := b.Apply(resourcev3.ClusterType, map[string]*anypb.Any{
		"fast": cs["fast"], "patient": mustAny(t, warmCluster("patient", clusterv3.Cluster_EDS, "", durationpb.New(100*time.Millisecond))),
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	checkWarm(t, b, `waiting for the initial cluster warm-up: endpoints of cluster "patient"`)

	if err := b.Apply(resourcev3.EndpointType, map[string]*anypb.Any{"patient": mustAny(t, &endpointv3.ClusterLoadAssignment{ClusterName: "patient"})}); err != nil {
		t.Fatal(err)
	}
	checkWarm(t, b, "")
}

func newWarmBuilder(t *testing.T) *Builder {
	b := &Builder{HCM: &hcm.Compiler{}, Upstream: upstream.NewManager()}
	b.Listeners = &listener.Manager{Views: b.View, Handler: &hcm.Handler{Views: b.View}}
	t.Cleanup(func() {
		b.Listeners.Drain(t.Context())
		b.Upstream.Close()
	})
	return b
}

// checkWarm asserts listener "l" serves (wait "") or warms for wait,
// unbound.
func checkWarm(t *testing.T, b *Builder, wait string) {
	t.Helper()
	snap := b.Current()
	if wait == "" {
		if snap.Listeners["l"] == nil || snap.Warming["l"] != "" || b.Listeners.Addr("l") == "" {
			t.Fatalf("listener should serve: warming %q, bound at %q", snap.Warming["l"], b.Listeners.Addr("l"))
		}
		return
	}
	if snap.Listeners["l"] != nil || b.Listeners.Addr("l") != "" {
		t.Fatalf("listener serves at %q; want it warming for %s", b.Listeners.Addr("l"), wait)
	}
	if got := snap.Warming["l"]; !strings.Contains(got, wait) {
		t.Fatalf("warming reason = %q, want %q", got, wait)
	}
}
