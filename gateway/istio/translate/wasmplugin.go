package translate

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
	extensions "istio.io/client-go/pkg/apis/extensions/v1alpha1"

	"github.com/waygate/waygate/gateway/istio"
)

// wasmFilterPrefix names the filter istiod puts in the chain for a
// WasmPlugin (it points at the plugin's ECDS resource; Waygate inlines
// the config under the same name).
const wasmFilterPrefix = "extensions.istio.io/trafficextension/"

// wasmRuntime is the runtime istiod names; Waygate runs every plugin on
// its own host whatever the name.
const wasmRuntime = "envoy.wasm.runtime.v8"

// wasmFilter is one WasmPlugin's filter with what places it.
type wasmFilter struct {
	phase  extensionsv1alpha1.PluginPhase
	filter *hcmv3.HttpFilter
}

// selectWasmPlugins picks the WasmPlugins istiod gives the gateway: in
// the root namespace or the proxy's, selector empty or matching the
// proxy's labels, of type HTTP, whose traffic selectors (if any) take
// the gateway's client side. Within a phase, a higher priority runs
// first; ties go by creation time, then namespace and name.
// https://istio.io/latest/docs/reference/config/proxy_extensions/wasm-plugin/
func (t *translator) selectWasmPlugins() []*extensions.WasmPlugin {
	var out []*extensions.WasmPlugin
	for _, p := range t.cfg.WasmPlugins {
		if p.Namespace != rootNamespace && p.Namespace != t.proxy.Namespace {
			continue
		}
		spec := &p.Spec
		if spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0 {
			t.warn(wasmKey(p), "spec.targetRefs", "targetRefs attach a plugin to Gateway API resources, which Waygate does not translate; the plugin is ignored (use selector)")
			continue
		}
		if !labelsMatch(spec.GetSelector().GetMatchLabels(), t.proxy.Labels) {
			continue
		}
		if spec.GetType() == extensionsv1alpha1.PluginType_NETWORK {
			t.warn(wasmKey(p), "spec.type", "NETWORK plugins are not supported; the plugin is ignored")
			continue
		}
		if !t.wasmMatchesGateway(p) {
			continue
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if pa, pb := a.Spec.GetPriority().GetValue(), b.Spec.GetPriority().GetValue(); pa != pb {
			return pa > pb
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

// wasmMatchesGateway applies spec.match: a gateway's traffic is client
// traffic, so SERVER-only selectors leave it out. Ports are not told
// apart: a selector with ports applies to every port, with a warning.
func (t *translator) wasmMatchesGateway(p *extensions.WasmPlugin) bool {
	ms := p.Spec.GetMatch()
	if len(ms) == 0 {
		return true
	}
	for i, m := range ms {
		if m.GetMode() == typev1beta1.WorkloadMode_SERVER {
			continue
		}
		if len(m.GetPorts()) > 0 {
			t.warn(wasmKey(p), "spec.match["+strconv.Itoa(i)+"].ports", "port selectors are not applied; the plugin runs on every gateway port")
		}
		return true
	}
	return false
}

func wasmKey(p *extensions.WasmPlugin) istio.Key {
	return istio.Key{Kind: "WasmPlugin", Namespace: p.Namespace, Name: p.Name}
}

// wasmChain is the translated plugins' filters, built once per
// translation and shared by every HTTP connection manager.
type wasmChain struct{ filters []wasmFilter }

// wasmHTTPFilters translates the selected plugins, in order.
func (t *translator) wasmHTTPFilters() []wasmFilter {
	if t.wasm == nil {
		t.wasm = &wasmChain{}
		for _, p := range t.selectWasmPlugins() {
			if f := t.wasmHTTPFilter(p); f != nil {
				t.wasm.filters = append(t.wasm.filters, wasmFilter{phase: p.Spec.GetPhase(), filter: f})
			}
		}
	}
	return t.wasm.filters
}

// wasmHTTPFilter is the Wasm filter istiod's ECDS resource holds for a
// WasmPlugin: plugin name <namespace>.<name>, root_id the pluginName,
// the V8 runtime, the module from its url, pluginConfig as a JSON
// StringValue, vmConfig.env as environment variables, failStrategy as
// the failure policy. Only file:// modules are read: istio-agent fetches
// http(s):// and oci:// ones for Envoy, which Waygate does not run.
func (t *translator) wasmHTTPFilter(p *extensions.WasmPlugin) *hcmv3.HttpFilter {
	spec := &p.Spec
	path, ok := strings.CutPrefix(spec.GetUrl(), "file://")
	if !ok {
		t.warn(wasmKey(p), "spec.url", "%q: only file:// modules are loaded (fetch the module next to the gateway); the plugin is ignored", spec.GetUrl())
		return nil
	}
	vm := &wasmv3.VmConfig{
		Runtime: wasmRuntime,
		Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
			Specifier: &corev3.DataSource_Filename{Filename: path},
		}}},
	}
	if env := spec.GetVmConfig().GetEnv(); len(env) > 0 {
		ev := &wasmv3.EnvironmentVariables{}
		for _, e := range env {
			if e.GetValueFrom() == extensionsv1alpha1.EnvValueSource_HOST {
				ev.HostEnvKeys = append(ev.HostEnvKeys, e.GetName())
				continue
			}
			if ev.KeyValues == nil {
				ev.KeyValues = map[string]string{}
			}
			ev.KeyValues[e.GetName()] = e.GetValue()
		}
		vm.EnvironmentVariables = ev
	}
	pc := &wasmv3.PluginConfig{
		Name:   p.Namespace + "." + p.Name,
		RootId: spec.GetPluginName(),
		Vm:     &wasmv3.PluginConfig_VmConfig{VmConfig: vm},
	}
	if c := spec.GetPluginConfig(); c != nil && len(c.GetFields()) > 0 {
		// encoding/json writes map keys in order and no random
		// spacing (protojson varies its spacing from one build to the
		// next on purpose), so the config's bytes depend on the plugin
		// alone.
		js, err := json.Marshal(c.AsMap())
		if err != nil {
			t.warn(wasmKey(p), "spec.pluginConfig", "cannot be written as JSON: %v; the plugin is ignored", err)
			return nil
		}
		pc.Configuration = mustAny(wrapperspb.String(string(js)))
	}
	switch spec.GetFailStrategy() {
	case extensionsv1alpha1.FailStrategy_FAIL_OPEN:
		pc.FailOpen = true
		pc.FailurePolicy = wasmv3.FailurePolicy_FAIL_OPEN
	case extensionsv1alpha1.FailStrategy_FAIL_RELOAD:
		pc.FailurePolicy = wasmv3.FailurePolicy_FAIL_RELOAD
	}
	return &hcmv3.HttpFilter{
		Name:       wasmFilterPrefix + p.Namespace + "." + p.Name + "~istio-translated-wasmplugin",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: deterministicAny(&wasmfilterv3.Wasm{Config: pc})},
	}
}

// withWasmFilters places the plugins' filters by phase, as istiod's
// gateway chain does: AUTHN before jwt_authn, AUTHZ between jwt_authn
// and the authorization filters (ext_authz, rbac), STATS and
// unspecified after them, ahead of everything else (rate limits,
// fault, cors, router).
func withWasmFilters(chain []*hcmv3.HttpFilter, wasm []wasmFilter) []*hcmv3.HttpFilter {
	if len(wasm) == 0 {
		return chain
	}
	afterAuthn, afterAuthz := 0, 0
	for i, f := range chain {
		switch f.GetName() {
		case jwtFilterName:
			afterAuthn, afterAuthz = i+1, i+1
		case rbacFilter, extAuthzFilter:
			afterAuthz = i + 1
		}
	}
	var authn, authz, rest []*hcmv3.HttpFilter
	for _, w := range wasm {
		switch w.phase {
		case extensionsv1alpha1.PluginPhase_AUTHN:
			authn = append(authn, w.filter)
		case extensionsv1alpha1.PluginPhase_AUTHZ:
			authz = append(authz, w.filter)
		default:
			rest = append(rest, w.filter)
		}
	}
	out := make([]*hcmv3.HttpFilter, 0, len(chain)+len(wasm))
	out = append(out, authn...)
	out = append(out, chain[:afterAuthn]...)
	out = append(out, authz...)
	out = append(out, chain[afterAuthn:afterAuthz]...)
	out = append(out, rest...)
	return append(out, chain[afterAuthz:]...)
}
