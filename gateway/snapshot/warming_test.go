package snapshot

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/waygate/waygate/conformance/backend"
	_ "github.com/waygate/waygate/filters/router"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/upstream"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A listener whose route configuration has not arrived warms: it is not
// bound, its RDS name is subscribed, and it starts serving when the
// routes come, as in Envoy.
func TestListenerWarmsUntilItsRoutesArrive(t *testing.T) {
	b := &Builder{HCM: &hcm.Compiler{}, Upstream: upstream.NewManager()}
	b.Listeners = &listener.Manager{Views: b.View, Handler: &hcm.Handler{Views: b.View}}
	t.Cleanup(func() { b.Listeners.Drain(t.Context()) })

	port, err := backend.FreePort()
	if err != nil {
		t.Fatal(err)
	}

	h := &hcmv3.HttpConnectionManager{
		StatPrefix:     "warm",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "r"}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
	l := &listenerv3.Listener{
		Name: "warm",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "hcm",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}}}}},
	}
	if err := b.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"warm": mustAny(t, l)}); err != nil {
		t.Fatal(err)
	}
	snap := b.Current()
	if len(snap.Listeners) != 0 || snap.Pending["warm"] == nil || snap.Warming["warm"] == "" {
		t.Fatalf("listener should warm: active %v, warming %v", snap.Listeners, snap.Warming)
	}
	if got := b.Names(resourcev3.RouteType); len(got) != 1 || got[0] != "r" {
		t.Errorf("RDS subscription = %v, want [r]", got)
	}
	if b.Listeners.Addr("warm") != "" {
		t.Error("a warming listener is bound")
	}

	rc := &routev3.RouteConfiguration{Name: "r"}
	if err := b.Apply(resourcev3.RouteType, map[string]*anypb.Any{"r": mustAny(t, rc)}); err != nil {
		t.Fatal(err)
	}
	snap = b.Current()
	if snap.Listeners["warm"] == nil || len(snap.Pending) != 0 || len(snap.Warming) != 0 {
		t.Fatalf("listener should serve once its routes arrived: warming %v", snap.Warming)
	}
	if b.Listeners.Addr("warm") == "" {
		t.Error("the listener is not bound after warming")
	}
}
