package snapshot

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	netwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/stats"

	_ "github.com/waygate/waygate/filters/wasm"
)

const (
	netWasmType = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
	netRBACType = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
)

// A network Wasm filter whose module cannot be fetched on its first
// load (the server answers 404) does not leave its listener warming:
// as istio-agent, the gateway serves it with a deny-all stand-in for
// FAIL_CLOSED (the connection closes at the client's first data) and an
// allow-all one for FAIL_OPEN (the data goes through), fetching again at
// each push and counting each stand-in. A filter whose type_urls leave
// RBAC out gets none: the config is refused and the listener warms on.
func TestNetworkWasmNotFetched(t *testing.T) {
	t.Setenv("WAYGATE_WASM_CACHE_DIR", t.TempDir())
	modules := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(modules.Close)
	b, port := newECDSBuilder(t)
	store := stats.NewStore()
	b.HCM.Stats = store
	echoPort := startEcho(t)
	cluster := &clusterv3.Cluster{
		Name:                 "raw",
		ConnectTimeout:       durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "raw", Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(echoPort)}}}},
			}}}},
		}}},
	}
	if err := b.Apply(resourcev3.ClusterType, map[string]*anypb.Any{"raw": mustAny(t, cluster)}); err != nil {
		t.Fatal(err)
	}
	listen := func(name string, port int, typeURLs ...string) {
		t.Helper()
		l := &listenerv3.Listener{
			Name: name,
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}}}},
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{
				{Name: "plugin", ConfigType: &listenerv3.Filter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
					ConfigSource: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
					TypeUrls:     typeURLs,
				}}},
				{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &tcpv3.TcpProxy{
					StatPrefix: "raw", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "raw"}})}},
			}}},
		}
		if err := b.Apply(resourcev3.ListenerType, map[string]*anypb.Any{name: mustAny(t, l)}); err != nil {
			t.Fatal(err)
		}
	}
	plugin := func(policy wasmv3.FailurePolicy) map[string]*anypb.Any {
		return extension(t, "plugin", mustAny(t, &netwasmv3.Wasm{Config: &wasmv3.PluginConfig{
			Name:          "remote",
			FailurePolicy: policy,
			Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{Code: &corev3.AsyncDataSource{
				Specifier: &corev3.AsyncDataSource_Remote{Remote: &corev3.RemoteDataSource{
					HttpUri: &corev3.HttpUri{Uri: modules.URL + "/plugin.wasm", Timeout: durationpb.New(2 * time.Second),
						HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "_"}},
					Sha256: strings.Repeat("ab", 32),
				}},
			}}},
		}}))
	}
	// echoed sends a line and tells whether it came back.
	echoed := func() bool {
		t.Helper()
		c, err := net.DialTimeout("tcp", b.Listeners.Addr("ecds"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("x\n")); err != nil {
			return false
		}
		got, _ := io.ReadAll(c)
		return string(got) == "x\n"
	}
	fallbacks := func() uint64 { return store.Counter(hcm.FetchFallbackStat).Value() }

	// Without RBAC among the type_urls: refused, the listener warms.
	listen("ecds", port, netWasmType)
	if err := b.Apply(resourcev3.ExtensionConfigType, plugin(wasmv3.FailurePolicy_FAIL_CLOSED)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error = %v, want the fetch's failure", err)
	}
	if b.Listeners.Addr("ecds") != "" || fallbacks() != 0 {
		t.Fatalf("listener bound (%q) or stand-in counted (%d) though the filter cannot take an RBAC config", b.Listeners.Addr("ecds"), fallbacks())
	}

	// With istiod's type_urls: FAIL_CLOSED denies.
	listen("ecds", port, netWasmType, netRBACType)
	if err := b.Apply(resourcev3.ExtensionConfigType, plugin(wasmv3.FailurePolicy_FAIL_CLOSED)); err != nil {
		t.Fatal(err)
	}
	if b.Listeners.Addr("ecds") == "" {
		t.Fatalf("listener not serving with the deny-all stand-in: warming %v", b.Current().Warming)
	}
	if echoed() {
		t.Error("FAIL_CLOSED stand-in: data went through, want the connection closed")
	}
	if n := fallbacks(); n != 1 {
		t.Errorf("%s = %d, want 1", hcm.FetchFallbackStat, n)
	}

	// FAIL_OPEN, pushed: fetched again, failed again, allow-all.
	if err := b.Apply(resourcev3.ExtensionConfigType, plugin(wasmv3.FailurePolicy_FAIL_OPEN)); err != nil {
		t.Fatal(err)
	}
	if !echoed() {
		t.Error("FAIL_OPEN stand-in: data did not go through")
	}
	if n := fallbacks(); n != 2 {
		t.Errorf("%s = %d, want 2", hcm.FetchFallbackStat, n)
	}
}

// startEcho is a raw TCP server writing back what it reads, closing
// its side when the client closes its own.
func startEcho(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				c.Write(buf[:n])
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
