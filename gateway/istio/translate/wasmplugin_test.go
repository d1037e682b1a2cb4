package translate

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
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

// TestWasmPluginTranslation reads the golden case's chain: the plugins
// the gateway gets, in istiod's order, with istiod's Wasm config.
func TestWasmPluginTranslation(t *testing.T) {
	cfg := loadCase(t, filepath.Join("testdata", "wasmplugin", "input.yaml"))
	res, warnings := Translate(cfg, Proxy{})
	if len(res.Listeners) != 1 {
		t.Fatalf("%d listeners", len(res.Listeners))
	}
	m := &hcmv3.HttpConnectionManager{}
	fc := res.Listeners[0].GetFilterChains()[0]
	if err := fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	var names []string
	plugins := map[string]*wasmv3.PluginConfig{}
	for _, f := range m.GetHttpFilters() {
		name := strings.TrimSuffix(strings.TrimPrefix(f.GetName(), wasmFilterPrefix+"istio-system."), "~istio-translated-wasmplugin")
		names = append(names, name)
		if name != f.GetName() {
			w := &wasmfilterv3.Wasm{}
			if err := f.GetTypedConfig().UnmarshalTo(w); err != nil {
				t.Fatal(err)
			}
			plugins[name] = w.GetConfig()
		}
	}
	want := []string{"basic-auth", jwtFilterName, "authz-high", "authz-low", rbacFilter, "add-header", "stats", faultFilter, corsFilter, routerFilter}
	if !slices.Equal(names, want) {
		t.Errorf("chain = %v\nwant    %v", names, want)
	}
	add := plugins["add-header"]
	if add.GetName() != "istio-system.add-header" || add.GetRootId() != "add_header" ||
		add.GetVmConfig().GetCode().GetLocal().GetFilename() != "/opt/filters/add_header.wasm" ||
		add.GetVmConfig().GetRuntime() != wasmRuntime || add.GetFailurePolicy() != wasmv3.FailurePolicy_UNSPECIFIED {
		t.Errorf("add-header config = %v", add)
	}
	conf := &wrapperspb.StringValue{}
	if err := add.GetConfiguration().UnmarshalTo(conf); err != nil || strings.ReplaceAll(conf.GetValue(), " ", "") != `{"header":"x-wasm","value":"hello"}` {
		t.Errorf("add-header configuration = %q, %v", conf.GetValue(), err)
	}
	ba := plugins["basic-auth"]
	if ba.GetFailurePolicy() != wasmv3.FailurePolicy_FAIL_OPEN || !slices.Equal(ba.GetVmConfig().GetEnvironmentVariables().GetHostEnvKeys(), []string{"POD_NAME"}) ||
		ba.GetVmConfig().GetEnvironmentVariables().GetKeyValues()["MODE"] != "strict" || ba.GetConfiguration() != nil {
		t.Errorf("basic-auth config = %v", ba)
	}
	if plugins["authz-high"].GetFailurePolicy() != wasmv3.FailurePolicy_FAIL_RELOAD {
		t.Errorf("authz-high failure policy = %v", plugins["authz-high"].GetFailurePolicy())
	}
	// The same input gives the same bytes: an unchanged plugin keeps
	// its filter config, hence its instances.
	again, _ := Translate(cfg, Proxy{})
	for i := range 20 {
		a, _ := proto.MarshalOptions{Deterministic: true}.Marshal(res.Listeners[0])
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(again.Listeners[0])
		if !bytes.Equal(a, b) {
			t.Fatalf("translation %d differs from the first", i)
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
	if wantW := []string{"from-registry spec.url", "stats spec.match[0].ports", "tcp spec.type"}; !slices.Equal(ws, wantW) {
		t.Errorf("warnings = %v, want %v", ws, wantW)
	}
}
