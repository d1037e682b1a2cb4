package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ecdsPlugin is the name of the filter, hence of its ECDS resource.
const ecdsPlugin = "extensions.istio.io/trafficextension/default.add-header~istio-translated-wasmplugin"

// ecdsListener is an HTTP listener whose chain runs the Wasm filter
// configured through ECDS before the router, as istiod sends a
// WasmPlugin's.
func ecdsListener(port int) *listenerv3.Listener {
	ads := &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}, ResourceApiVersion: corev3.ApiVersion_V3}
	router, _ := anypb.New(&routerv3.Router{})
	h := &hcmv3.HttpConnectionManager{
		StatPrefix:     "ecds",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "r", ConfigSource: ads}},
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: ecdsPlugin, ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
				ConfigSource: ads,
				TypeUrls: []string{
					"type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
					"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
				},
			}}},
			{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}},
		},
	}
	hc, _ := anypb.New(h)
	return &listenerv3.Listener{
		Name:         "ecds",
		Address:      sockAddr("127.0.0.1", port),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hc}}}}},
	}
}

// wasmExtension is the ECDS resource of the test plugin in headers
// mode, adding x-wasm: value to responses, loaded from module.
func wasmExtension(module, value string) *corev3.TypedExtensionConfig {
	conf, _ := json.Marshal(map[string]string{"mode": "headers", "header": "x-wasm", "value": value})
	cfg, _ := anypb.New(wrapperspb.String(string(conf)))
	w, _ := anypb.New(&wasmfilterv3.Wasm{Config: &wasmv3.PluginConfig{
		Name:          "default.add-header",
		Configuration: cfg,
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			Runtime: "envoy.wasm.runtime.v8",
			Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
				Specifier: &corev3.DataSource_Filename{Filename: module},
			}}},
		}},
	}})
	return &corev3.TypedExtensionConfig{Name: ecdsPlugin, TypedConfig: w}
}

// TestProxyECDSWasmPlugin feeds `waygate proxy` a Wasm filter over
// ECDS, with both protocols: the listener warms until the extension
// config arrives, a new config takes over under a request loop without
// failing a request, and a config that cannot load (or of an unknown
// type) is NACKed naming the resource and field while the previous
// plugin keeps serving.
func TestProxyECDSWasmPlugin(t *testing.T) {
	module := buildTestPlugin(t)
	for _, delta := range []bool{false, true} {
		name := "sotw"
		if delta {
			name = "delta"
		}
		t.Run(name, func(t *testing.T) { testECDS(t, module, delta) })
	}
}

func testECDS(t *testing.T, module string, delta bool) {
	b := startBackend(t, "echo", "v1")
	xds := startXDS(t)
	const node = "ecds-node"
	port := freePort(t)
	snap := func(ext ...*corev3.TypedExtensionConfig) map[resourcev3.Type][]types.Resource {
		res := map[resourcev3.Type][]types.Resource{
			resourcev3.ListenerType: {ecdsListener(port)},
			resourcev3.RouteType: {&routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
				Name: "all", Domains: []string{"*"},
				Routes: []*routev3.Route{{Match: prefix("/"), Action: toCluster("echo")}},
			}}}},
			resourcev3.ClusterType:  {edsCluster("echo")},
			resourcev3.EndpointType: {assignment("echo", b.Addr())},
		}
		for _, e := range ext {
			res[resourcev3.ExtensionConfigType] = append(res[resourcev3.ExtensionConfigType], e)
		}
		return res
	}
	xds.push(t, node, "1", snap())
	args := []string{}
	if delta {
		args = append(args, "--delta")
	}
	p := startProxy(t, xds.addr, node, args...)

	// Everything but the extension config is there: the listener warms.
	waitFor(t, func() bool { return strings.Contains(configDump(t, p), `"warming_state"`) })
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatal("the listener accepts connections before its extension config arrived")
	}

	xds.push(t, node, "2", snap(wasmExtension(module, "one")))
	p.waitReady(t)
	client := &http.Client{Timeout: 5 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	getWasm := func() (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.Header.Get("X-Wasm"), nil
	}
	if v, err := getWasm(); err != nil || v != "one" {
		t.Fatalf("x-wasm = %q, %v; want one", v, err)
	}
	if d := configDump(t, p); !strings.Contains(d, "envoy.admin.v3.EcdsConfigDump") || !strings.Contains(d, ecdsPlugin) {
		t.Errorf("/config_dump lacks the extension config:\n%.2000s", d)
	}

	// A new config under a request loop: no request fails.
	pushed := time.Now()
	served, failed, first := requestsAcross(t, func() error {
		v, err := getWasm()
		if err == nil && v != "one" && v != "two" {
			err = fmt.Errorf("x-wasm %q", v)
		}
		return err
	}, func() {
		pushed = time.Now()
		xds.push(t, node, "3", snap(wasmExtension(module, "two")))
	}, func() bool {
		v, err := getWasm()
		if err != nil || v != "two" {
			return false
		}
		t.Logf("the new plugin answered %v after the push", time.Since(pushed).Round(time.Millisecond))
		return true
	})
	if failed > 0 {
		t.Errorf("%d of %d requests failed across the ECDS update; first: %v", failed, failed+served, first)
	}
	t.Logf("%d requests across the ECDS update", served)

	// Bad configs are NACKed; "two" keeps serving.
	unknown, _ := anypb.New(&structpb.Struct{})
	for i, tc := range []struct {
		ext  *corev3.TypedExtensionConfig
		want []string
	}{
		{wasmExtension(module+".missing", "three"), []string{`extension config "` + ecdsPlugin + `"`, "config.vm_config.code.local.filename"}},
		{&corev3.TypedExtensionConfig{Name: ecdsPlugin, TypedConfig: unknown}, []string{`extension config "` + ecdsPlugin + `": typed_config:`, "google.protobuf.Struct"}},
	} {
		// A rejected version can be NACKed more than once (each time the
		// listener's update subscribes to it again), so the wait is for the
		// NACK of this config, not for any NACK after the push.
		before := xds.nackCount()
		xds.push(t, node, fmt.Sprint(4+i), snap(tc.ext))
		last := tc.want[len(tc.want)-1]
		waitFor(t, func() bool { return xds.nackCount() > before && strings.Contains(xds.lastNACK(), last) })
		nack := xds.lastNACK()
		t.Logf("NACK: %s", nack)
		for _, w := range tc.want {
			if !strings.Contains(nack, w) {
				t.Errorf("NACK %q lacks %q", nack, w)
			}
		}
		if v, err := getWasm(); err != nil || v != "two" {
			t.Errorf("after a NACKed config: x-wasm = %q, %v; want the previous two", v, err)
		}
	}
}

func configDump(t *testing.T, p *proxy) string {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/config_dump")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
