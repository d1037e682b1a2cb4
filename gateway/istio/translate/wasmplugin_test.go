package translate

import (
	"bytes"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
	extensions "istio.io/client-go/pkg/apis/extensions/v1alpha1"

	"github.com/waygate/waygate/gateway/istio"
)

func TestWithWasmFiltersByPhase(t *testing.T) {
	f := func(name string) *hcmv3.HttpFilter { return &hcmv3.HttpFilter{Name: name} }
	w := func(name string, p extensionsv1alpha1.PluginPhase) wasmFilter {
		return wasmFilter{phase: p, filter: f(name)}
	}
	all := []wasmFilter{
		w("authn", extensionsv1alpha1.PluginPhase_AUTHN),
		w("authz", extensionsv1alpha1.PluginPhase_AUTHZ),
		w("stats", extensionsv1alpha1.PluginPhase_STATS),
		w("any", extensionsv1alpha1.PluginPhase_UNSPECIFIED_PHASE),
	}
	tests := []struct {
		name  string
		chain []string
		want  []string
	}{
		{"jwt and rbac", []string{jwtFilterName, rbacFilter, rbacFilter, faultFilter, routerFilter},
			[]string{"authn", jwtFilterName, "authz", rbacFilter, rbacFilter, "stats", "any", faultFilter, routerFilter}},
		{"ext_authz", []string{jwtFilterName, rbacFilter, extAuthzFilter, rbacFilter, faultFilter, routerFilter},
			[]string{"authn", jwtFilterName, "authz", rbacFilter, extAuthzFilter, rbacFilter, "stats", "any", faultFilter, routerFilter}},
		{"rbac only", []string{rbacFilter, faultFilter, routerFilter},
			[]string{"authn", "authz", rbacFilter, "stats", "any", faultFilter, routerFilter}},
		{"no security", []string{faultFilter, corsFilter, routerFilter},
			[]string{"authn", "authz", "stats", "any", faultFilter, corsFilter, routerFilter}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chain []*hcmv3.HttpFilter
			for _, n := range tt.chain {
				chain = append(chain, f(n))
			}
			var got []string
			for _, x := range withWasmFilters(chain, all) {
				got = append(got, x.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("chain = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestWasmPluginTranslation reads the golden case's chains and ECDS
// resources: the plugins each port gets, in istiod's order, each a
// filter configured through ECDS, with istiod's Wasm config.
func TestWasmPluginTranslation(t *testing.T) {
	cfg := loadCase(t, filepath.Join("testdata", "wasmplugin", "input.yaml"))
	res, warnings := Translate(cfg, Proxy{})
	if len(res.Listeners) != 3 {
		t.Fatalf("%d listeners", len(res.Listeners))
	}
	short := func(n string) string {
		return strings.TrimSuffix(strings.TrimPrefix(n, wasmFilterPrefix+"istio-system."), wasmFilterSuffix)
	}
	network := func(l int) []string {
		var names []string
		for _, f := range res.Listeners[l].GetFilterChains()[0].GetFilters() {
			names = append(names, short(f.GetName()))
			if cd := f.GetConfigDiscovery(); cd != nil && !slices.Equal(cd.GetTypeUrls(), []string{wasmNetworkType, rbacNetworkType}) {
				t.Errorf("%s type_urls = %v", f.GetName(), cd.GetTypeUrls())
			}
		}
		return names
	}
	chain := func(l int) []string {
		m := &hcmv3.HttpConnectionManager{}
		fs := res.Listeners[l].GetFilterChains()[0].GetFilters()
		if err := fs[len(fs)-1].GetTypedConfig().UnmarshalTo(m); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range m.GetHttpFilters() {
			names = append(names, short(f.GetName()))
			if cd := f.GetConfigDiscovery(); cd != nil {
				if cd.GetConfigSource().GetAds() == nil || cd.GetConfigSource().GetInitialFetchTimeout().AsDuration() != 0 ||
					!slices.Equal(cd.GetTypeUrls(), []string{wasmHTTPType, rbacHTTPType}) || cd.GetDefaultConfig() != nil {
					t.Errorf("%s config_discovery = %v", f.GetName(), cd)
				}
			} else if f.GetTypedConfig() == nil {
				t.Errorf("%s has neither typed_config nor config_discovery", f.GetName())
			}
		}
		return names
	}
	common := []string{"basic-auth", jwtFilterName, "authz-high", "authz-low", rbacFilter}
	tail := []string{"add-header", "from-https", "from-registry", faultFilter, corsFilter, routerFilter}
	// stats selects port 8080, no-scheme 8081; both STATS, ahead of
	// the unspecified phase.
	if got, want := chain(0), slices.Concat(common, []string{"stats"}, tail); !slices.Equal(got, want) {
		t.Errorf("8080 chain = %v\nwant         %v", got, want)
	}
	if got, want := chain(1), slices.Concat(common, []string{"no-scheme"}, tail); !slices.Equal(got, want) {
		t.Errorf("8081 chain = %v\nwant         %v", got, want)
	}
	// NETWORK plugins, AUTHN then STATS, come before the last network
	// filter of every port: tcp_proxy, or the connection manager.
	if got, want := network(2), []string{"tcp-authn", "tcp", tcpProxyFilter}; !slices.Equal(got, want) {
		t.Errorf("9000 chain = %v, want %v", got, want)
	}
	for l := range 2 {
		if got, want := network(l), []string{"tcp-authn", "tcp", hcmFilter}; !slices.Equal(got, want) {
			t.Errorf("listener %d network filters = %v, want %v", l, got, want)
		}
	}

	plugins := map[string]*wasmv3.PluginConfig{}
	for _, e := range res.Extensions {
		var pc *wasmv3.PluginConfig
		switch e.GetTypedConfig().GetTypeUrl() {
		case wasmHTTPType:
			w := &wasmfilterv3.Wasm{}
			if err := e.GetTypedConfig().UnmarshalTo(w); err != nil {
				t.Fatal(err)
			}
			pc = w.GetConfig()
		case wasmNetworkType:
			w := &netwasmv3.Wasm{}
			if err := e.GetTypedConfig().UnmarshalTo(w); err != nil {
				t.Fatal(err)
			}
			pc = w.GetConfig()
		default:
			t.Fatalf("%s: type %s", e.GetName(), e.GetTypedConfig().GetTypeUrl())
		}
		plugins[short(e.GetName())] = pc
	}
	if got := slices.Sorted(maps.Keys(plugins)); !slices.Equal(got, []string{"add-header", "authz-high", "authz-low", "basic-auth", "from-https", "from-registry", "no-scheme", "stats", "tcp", "tcp-authn"}) {
		t.Errorf("ECDS resources = %v", got)
	}
	env := func(pc *wasmv3.PluginConfig) map[string]string {
		return pc.GetVmConfig().GetEnvironmentVariables().GetKeyValues()
	}
	add := plugins["add-header"]
	if add.GetName() != "istio-system.add-header" || add.GetRootId() != "add_header" ||
		add.GetVmConfig().GetCode().GetLocal().GetFilename() != "/opt/filters/add_header.wasm" ||
		add.GetVmConfig().GetRuntime() != wasmRuntime || add.GetFailurePolicy() != wasmv3.FailurePolicy_FAIL_CLOSED {
		t.Errorf("add-header config = %v", add)
	}
	conf := &wrapperspb.StringValue{}
	if err := add.GetConfiguration().UnmarshalTo(conf); err != nil || conf.GetValue() != `{"header":"x-wasm","value":"hello"}` {
		t.Errorf("add-header configuration = %q, %v", conf.GetValue(), err)
	}
	ba := plugins["basic-auth"]
	if ba.GetFailurePolicy() != wasmv3.FailurePolicy_FAIL_OPEN || ba.GetFailOpen() ||
		!slices.Equal(ba.GetVmConfig().GetEnvironmentVariables().GetHostEnvKeys(), []string{"POD_NAME"}) ||
		env(ba)["MODE"] != "strict" || ba.GetConfiguration().GetTypeUrl() != "" || len(ba.GetConfiguration().GetValue()) != 0 {
		t.Errorf("basic-auth config = %v", ba)
	}
	if v, ok := env(ba)[wasmResourceVersionEnv]; !ok || v != "" {
		t.Errorf("basic-auth %s = %q, %v; istiod always sets it", wasmResourceVersionEnv, v, ok)
	}
	if plugins["authz-high"].GetFailurePolicy() != wasmv3.FailurePolicy_FAIL_RELOAD {
		t.Errorf("authz-high failure policy = %v", plugins["authz-high"].GetFailurePolicy())
	}
	remote := func(name string) *corev3.RemoteDataSource { return plugins[name].GetVmConfig().GetCode().GetRemote() }
	if r := remote("from-https"); r.GetHttpUri().GetUri() != "https://plugins.example.com/filter.wasm" || r.GetHttpUri().GetCluster() != "_" ||
		r.GetHttpUri().GetTimeout().AsDuration() != wasmRemoteTimeout || r.GetSha256() != "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0" ||
		env(plugins["from-https"])[wasmResourceVersionEnv] != "42" {
		t.Errorf("from-https config = %v", plugins["from-https"])
	}
	if r := remote("from-registry"); r.GetHttpUri().GetUri() != "oci://ghcr.io/example/plugin:1.0" ||
		env(plugins["from-registry"])[wasmPolicyEnv] != "Always" {
		t.Errorf("from-registry config = %v", plugins["from-registry"])
	}
	if v, ok := env(plugins["from-registry"])[wasmSecretEnv]; !ok || v != "" {
		t.Errorf("from-registry %s = %q, %v", wasmSecretEnv, v, ok)
	}
	if r := remote("no-scheme"); r.GetHttpUri().GetUri() != "oci://ghcr.io/example/other:2.0" {
		t.Errorf("a url without scheme is an OCI image: %v", r)
	}

	// The same input gives the same bytes: an unchanged plugin keeps
	// its filter config, hence its instances.
	again, _ := Translate(cfg, Proxy{})
	for i := range 20 {
		for j := range res.Extensions {
			a, _ := proto.MarshalOptions{Deterministic: true}.Marshal(res.Extensions[j])
			b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(again.Extensions[j])
			if !bytes.Equal(a, b) {
				t.Fatalf("translation %d of %s differs from the first", i, res.Extensions[j].GetName())
			}
		}
		again, _ = Translate(cfg, Proxy{})
	}
	var ws []string
	for _, w := range warnings {
		if w.Resource.Kind == "WasmPlugin" {
			ws = append(ws, w.Resource.Name+" "+w.Field)
		}
	}
	slices.Sort(ws)
	if wantW := []string{"to-gateway spec.targetRefs"}; !slices.Equal(ws, wantW) {
		t.Errorf("warnings = %v, want %v", ws, wantW)
	}
}

// A plugin with targetRefs goes to the proxy of the Gateway API Gateway
// it names, in its own namespace, and to no other proxy, whatever its
// selector; Service targets attach to waypoints only.
func TestWasmPluginTargetRefs(t *testing.T) {
	plugin := func(ns string, refs ...*typev1beta1.PolicyTargetReference) *extensions.WasmPlugin {
		p := &extensions.WasmPlugin{}
		p.Name, p.Namespace = "p", ns
		p.Spec.Url = "file:///p.wasm"
		p.Spec.TargetRefs = refs
		return p
	}
	gw := func(name string) *typev1beta1.PolicyTargetReference {
		return &typev1beta1.PolicyTargetReference{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: name}
	}
	svc := &typev1beta1.PolicyTargetReference{Kind: "Service", Name: "web"}
	gwAPI := map[string]string{gatewayNameLabel: "web", "istio.io/gateway-name": "web"}
	for _, tc := range []struct {
		name   string
		p      *extensions.WasmPlugin
		labels map[string]string
		ns     string
		want   bool
	}{
		{"gateway named", plugin("apps", gw("web")), gwAPI, "apps", true},
		{"one of several refs", plugin("apps", svc, gw("other"), gw("web")), gwAPI, "apps", true},
		{"other gateway", plugin("apps", gw("other")), gwAPI, "apps", false},
		{"root namespace plugin", plugin(rootNamespace, gw("web")), gwAPI, "apps", false},
		{"service", plugin("apps", svc), gwAPI, "apps", false},
		{"gateway kind without its group", plugin("apps", &typev1beta1.PolicyTargetReference{Kind: "Gateway", Name: "web"}), gwAPI, "apps", false},
		{"proxy without the gateway label", plugin("istio-system", gw("web")), nil, "istio-system", false},
		{"no refs on a Gateway API proxy: selector", plugin("apps"), gwAPI, "apps", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &translator{cfg: &istio.Config{WasmPlugins: []*extensions.WasmPlugin{tc.p}},
				proxy: Proxy{Namespace: tc.ns, Labels: tc.labels}.withDefaults()}
			if got := len(tr.selectWasmPlugins()) == 1; got != tc.want {
				t.Errorf("selected = %v, want %v", got, tc.want)
			}
		})
	}
}

// A NETWORK plugin goes before the connection manager of each
// TLS-terminating server's filter chain on the ports it selects, and
// not onto other ports.
func TestNetworkWasmPluginOnTLSChains(t *testing.T) {
	cfg := loadCase(t, filepath.Join("testdata", "https-simple", "input.yaml"))
	p := &extensions.WasmPlugin{}
	p.Name, p.Namespace = "conn-audit", rootNamespace
	p.Spec.Url = "file:///opt/filters/audit.wasm"
	p.Spec.Type = extensionsv1alpha1.PluginType_NETWORK
	p.Spec.Match = []*extensionsv1alpha1.WasmPlugin_TrafficSelector{{Ports: []*typev1beta1.PortSelector{{Number: 8443}}}}
	cfg.WasmPlugins = append(cfg.WasmPlugins, p)
	res, _ := Translate(cfg, Proxy{})
	name := wasmFilterPrefix + rootNamespace + ".conn-audit" + wasmFilterSuffix
	tls := 0
	for _, l := range res.Listeners {
		port := l.GetAddress().GetSocketAddress().GetPortValue()
		for i, fc := range l.GetFilterChains() {
			var names []string
			for _, f := range fc.GetFilters() {
				names = append(names, f.GetName())
			}
			want := []string{hcmFilter}
			if port == 8443 {
				want = []string{name, hcmFilter}
				tls++
			}
			if !slices.Equal(names, want) {
				t.Errorf("port %d chain %d = %v, want %v", port, i, names, want)
			}
		}
	}
	if tls != 2 {
		t.Errorf("%d filter chains on 8443, want one per server (2)", tls)
	}
	if len(res.Extensions) != 1 || res.Extensions[0].GetName() != name ||
		res.Extensions[0].GetTypedConfig().GetTypeUrl() != wasmNetworkType {
		t.Errorf("extensions = %v", res.Extensions)
	}
}
