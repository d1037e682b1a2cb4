package snapshot

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/conformance/backend"
	_ "github.com/waygate/waygate/filters/cors"
	_ "github.com/waygate/waygate/filters/fault"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/upstream"
)

const faultType = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

// abortWith is a fault filter answering every request with status.
func abortWith(t *testing.T, status uint32) *anypb.Any {
	return mustAny(t, &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{
		ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: status},
		Percentage: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED},
	}})
}

// ecdsListener is a listener on port whose HCM runs the discovered
// filter "plugin" (fault configs only) before the router, with an inline
// route answering 200.
func ecdsListener(t *testing.T, port int, src *corev3.ExtensionConfigSource) *anypb.Any {
	t.Helper()
	if src.ConfigSource == nil {
		src.ConfigSource = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	}
	if src.TypeUrls == nil {
		src.TypeUrls = []string{faultType}
	}
	h := &hcmv3.HttpConnectionManager{
		StatPrefix: "ecds",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			VirtualHosts: []*routev3.VirtualHost{{Name: "all", Domains: []string{"*"}, Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200}},
			}}}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: "plugin", ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: src}},
			{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}},
		},
	}
	return mustAny(t, &listenerv3.Listener{
		Name: "ecds",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "hcm",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}}}}},
	})
}

func newECDSBuilder(t *testing.T) (*Builder, int) {
	t.Helper()
	b := &Builder{HCM: &hcm.Compiler{}, Upstream: upstream.NewManager()}
	b.Listeners = &listener.Manager{Views: b.View, Handler: &hcm.Handler{Views: b.View}}
	t.Cleanup(func() { b.Listeners.Drain(t.Context()) })
	port, err := backend.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return b, port
}

func extension(t *testing.T, name string, cfg *anypb.Any) map[string]*anypb.Any {
	return map[string]*anypb.Any{name: mustAny(t, &corev3.TypedExtensionConfig{Name: name, TypedConfig: cfg})}
}

func status(t *testing.T, b *Builder) int {
	t.Helper()
	addr := b.Listeners.Addr("ecds")
	if addr == "" {
		t.Fatal("the listener is not bound")
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A listener whose filter comes over ECDS warms until the config
// arrives; an update replaces the filter on the same socket; a bad
// update is refused naming the resource and field, and the previous
// config keeps serving; a removed config leaves Envoy's 500.
func TestListenerRunsItsDiscoveredFilter(t *testing.T) {
	b, port := newECDSBuilder(t)
	if err := b.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"ecds": ecdsListener(t, port, &corev3.ExtensionConfigSource{})}); err != nil {
		t.Fatal(err)
	}
	if snap := b.Current(); len(snap.Listeners) != 0 || !strings.Contains(snap.Warming["ecds"], `"plugin"`) {
		t.Fatalf("listener should warm for its extension config: active %v, warming %v", snap.Listeners, snap.Warming)
	}
	if got := b.Names(resourcev3.ExtensionConfigType); len(got) != 1 || got[0] != "plugin" {
		t.Fatalf("ECDS subscription = %v, want [plugin]", got)
	}
	if b.Listeners.Addr("ecds") != "" {
		t.Fatal("a warming listener is bound")
	}

	if err := b.Apply(resourcev3.ExtensionConfigType, extension(t, "plugin", abortWith(t, 418))); err != nil {
		t.Fatal(err)
	}
	if got := status(t, b); got != 418 {
		t.Fatalf("status = %d, want the plugin's 418", got)
	}
	addr := b.Listeners.Addr("ecds")

	if err := b.Apply(resourcev3.ExtensionConfigType, extension(t, "plugin", abortWith(t, 419))); err != nil {
		t.Fatal(err)
	}
	if got := status(t, b); got != 419 {
		t.Fatalf("status after the update = %d, want 419", got)
	}
	if b.Listeners.Addr("ecds") != addr {
		t.Error("the update rebound the listener")
	}

	for _, tc := range []struct {
		name string
		cfg  *anypb.Any
		want string
	}{
		{"unknown type", mustAny(t, &structpb.Struct{}), `extension config "plugin": typed_config: unknown filter config type type.googleapis.com/google.protobuf.Struct`},
		{"type not in type_urls", mustAny(t, &corsv3.Cors{}), `http_filters[0] "plugin".config_discovery: extension config "plugin": typed_config: type type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors is not one of the filter's type_urls`},
		{"config that does not build", mustAny(t, &faultv3.HTTPFault{Delay: &faultcommonv3.FaultDelay{}}), `extension config "plugin": typed_config:`},
	} {
		err := b.Apply(resourcev3.ExtensionConfigType, extension(t, "plugin", tc.cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want it to contain %q", tc.name, err, tc.want)
		}
		if got := status(t, b); got != 419 {
			t.Fatalf("%s: status after a refused update = %d, want the previous 419", tc.name, got)
		}
	}

	if err := b.Apply(resourcev3.ExtensionConfigType, map[string]*anypb.Any{}); err != nil {
		t.Fatal(err)
	}
	if got := status(t, b); got != 500 {
		t.Errorf("status once the config is removed = %d, want 500 (no default_config)", got)
	}
}

// default_config with apply_default_config_without_warming serves at
// once; the received config then takes over, and its removal goes back
// to the default.
func TestDiscoveredFilterDefaultConfig(t *testing.T) {
	b, port := newECDSBuilder(t)
	src := &corev3.ExtensionConfigSource{DefaultConfig: abortWith(t, 421), ApplyDefaultConfigWithoutWarming: true}
	if err := b.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"ecds": ecdsListener(t, port, src)}); err != nil {
		t.Fatal(err)
	}
	if got := status(t, b); got != 421 {
		t.Fatalf("status before ECDS = %d, want the default's 421", got)
	}
	if err := b.Apply(resourcev3.ExtensionConfigType, extension(t, "plugin", abortWith(t, 418))); err != nil {
		t.Fatal(err)
	}
	if got := status(t, b); got != 418 {
		t.Fatalf("status = %d, want 418", got)
	}
	if err := b.Apply(resourcev3.ExtensionConfigType, map[string]*anypb.Any{}); err != nil {
		t.Fatal(err)
	}
	if got := status(t, b); got != 421 {
		t.Errorf("status after removal = %d, want the default's 421", got)
	}

	// Without apply_default_config_without_warming the listener waits.
	b2, port2 := newECDSBuilder(t)
	src = &corev3.ExtensionConfigSource{DefaultConfig: abortWith(t, 421)}
	if err := b2.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"ecds": ecdsListener(t, port2, src)}); err != nil {
		t.Fatal(err)
	}
	if snap := b2.Current(); snap.Warming["ecds"] == "" {
		t.Error("listener with a default_config but no apply_default_config_without_warming should warm")
	}

	// A default of a type outside type_urls is refused with the listener.
	src = &corev3.ExtensionConfigSource{DefaultConfig: mustAny(t, &corsv3.Cors{}), ApplyDefaultConfigWithoutWarming: true}
	err := b2.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"ecds": ecdsListener(t, port2, src)})
	if err == nil || !strings.Contains(err.Error(), "config_discovery: default_config: typed_config: type") {
		t.Errorf("error = %v", err)
	}
}

// A listener waiting for its extension config has its routes fetched
// meanwhile, as Envoy fetches a warming listener's RDS.
func TestWarmingListenerSubscribesItsRoutes(t *testing.T) {
	b, port := newECDSBuilder(t)
	la := ecdsListener(t, port, &corev3.ExtensionConfigSource{})
	var l listenerv3.Listener
	if err := la.UnmarshalTo(&l); err != nil {
		t.Fatal(err)
	}
	var h hcmv3.HttpConnectionManager
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&h); err != nil {
		t.Fatal(err)
	}
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "r"}}
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &h)}
	if err := b.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"ecds": mustAny(t, &l)}); err != nil {
		t.Fatal(err)
	}
	if b.Current().Warming["ecds"] == "" {
		t.Fatal("the listener should warm")
	}
	if got := b.Names(resourcev3.RouteType); len(got) != 1 || got[0] != "r" {
		t.Errorf("RDS subscription while waiting for ECDS = %v, want [r]", got)
	}
}

// When its initial_fetch_timeout passes without the config, the
// listener starts anyway, as Envoy's: the filter runs its default_config,
// else answers 500; the config, when it comes, takes over.
func TestDiscoveredFilterInitialFetchTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		def  *anypb.Any
		want int
	}{
		{"without default", nil, 500},
		{"with default", abortWith(t, 421), 421},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, port := newECDSBuilder(t)
			src := &corev3.ExtensionConfigSource{DefaultConfig: tc.def, ConfigSource: &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
				InitialFetchTimeout:   durationpb.New(50 * time.Millisecond),
			}}
			if err := b.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"ecds": ecdsListener(t, port, src)}); err != nil {
				t.Fatal(err)
			}
			if b.Current().Warming["ecds"] == "" {
				t.Fatal("the listener should warm first")
			}
			deadline := time.Now().Add(5 * time.Second)
			for b.Listeners.Addr("ecds") == "" {
				if time.Now().After(deadline) {
					t.Fatal("the listener did not start after its initial fetch timeout")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := status(t, b); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
			if err := b.Apply(resourcev3.ExtensionConfigType, extension(t, "plugin", abortWith(t, 418))); err != nil {
				t.Fatal(err)
			}
			if got := status(t, b); got != 418 {
				t.Errorf("status once the config came = %d, want 418", got)
			}
		})
	}
}
