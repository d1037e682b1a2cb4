package server

import (
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/waygate/waygate/gateway/istio"
)

// withPlugin is config plus a WasmPlugin whose pluginConfig holds value.
func withPlugin(t *testing.T, value string) *istio.Config {
	t.Helper()
	cfg := config(t, "8080")
	plugin, findings := istio.ParseDocuments("plugin.yaml", []byte(`
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: headers, namespace: istio-system}
spec:
  url: file:///opt/plugins/headers.wasm
  pluginConfig: {value: `+value+`}
`))
	if istio.HasErrors(findings) {
		t.Fatal(findings)
	}
	cfg.WasmPlugins = plugin.WasmPlugins
	return cfg
}

// A WasmPlugin is served as istiod serves it: its ECDS resource in the
// extension config type, named as the filter that names it. A new
// pluginConfig changes that type's version alone, so the proxy gets a
// new extension config and its listeners stay as they are.
func TestSnapshotServesWasmPluginsOverECDS(t *testing.T) {
	p := proxyOf(nodeWith(t, "n", map[string]any{"istio": "ingressgateway"}))
	a, _, err := snapshotFor(withPlugin(t, "one"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ext := a.GetResources(resourcev3.ExtensionConfigType)
	const name = "extensions.istio.io/trafficextension/istio-system.headers~istio-translated-wasmplugin"
	if len(ext) != 1 || ext[name] == nil {
		t.Fatalf("ECDS resources = %v, want %s", ext, name)
	}
	b, _, err := snapshotFor(withPlugin(t, "two"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.GetVersion(resourcev3.ExtensionConfigType) == b.GetVersion(resourcev3.ExtensionConfigType) {
		t.Error("the extension config version did not change with the pluginConfig")
	}
	for _, typ := range []string{listenerType, routeType, clusterType, endpointType} {
		if a.GetVersion(typ) != b.GetVersion(typ) {
			t.Errorf("%s version changed with a pluginConfig", typ)
		}
	}
	none, _, err := snapshotFor(config(t, "8080"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(none.GetResources(resourcev3.ExtensionConfigType)); n != 0 {
		t.Errorf("%d ECDS resources without WasmPlugins", n)
	}
}
