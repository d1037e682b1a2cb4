package translate

import (
	"sort"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
	extensions "istio.io/client-go/pkg/apis/extensions/v1alpha1"

	"github.com/waygate/waygate/gateway/istio"
)

// wasmFilterPrefix and wasmFilterSuffix frame the name istiod gives a
// WasmPlugin's filter and its ECDS resource: istiod serves a WasmPlugin
// as a TrafficExtension named <name>~istio-translated-wasmplugin.
const (
	wasmFilterPrefix = "extensions.istio.io/trafficextension/"
	wasmFilterSuffix = "~istio-translated-wasmplugin"
)

// gatewayNameLabel marks a proxy deployed for a Gateway API Gateway;
// only such a proxy takes policies by targetRefs.
const gatewayNameLabel = "gateway.networking.k8s.io/gateway-name"

// wasmPlugin is one selected WasmPlugin with its filter's name.
type wasmPlugin struct {
	p    *extensions.WasmPlugin
	name string
}

// selectWasmPlugins picks the WasmPlugins istiod gives the gateway: in
// the root namespace or the proxy's; attached by targetRefs when the
// proxy serves a Gateway API Gateway, else by selector (a plugin with
// targetRefs is not for a proxy without that label), as istiod's
// WorkloadPolicyMatcher; whose traffic selectors (if any) take the
// gateway's client side. Within a phase, a higher priority runs first;
// ties go by creation time, then namespace and name.
// https://istio.io/latest/docs/reference/config/proxy_extensions/wasm-plugin/
func (t *translator) selectWasmPlugins() []*extensions.WasmPlugin {
	var out []*extensions.WasmPlugin
	for _, p := range t.cfg.WasmPlugins {
		if p.Namespace != rootNamespace && p.Namespace != t.proxy.Namespace {
			continue
		}
		if !t.wasmAttached(p) || !t.wasmMatchesGateway(p) {
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

// wasmAttached applies selector and targetRefs. A Gateway target
// (gateway.networking.k8s.io) attaches the plugin to the proxy of the
// Gateway it names, in the plugin's namespace; Service and ServiceEntry
// targets attach to waypoints only, so a gateway never takes them.
func (t *translator) wasmAttached(p *extensions.WasmPlugin) bool {
	spec := &p.Spec
	refs := spec.GetTargetRefs()
	if len(refs) == 0 && spec.GetTargetRef() != nil {
		refs = []*typev1beta1.PolicyTargetReference{spec.GetTargetRef()}
	}
	gwName, gatewayAPI := t.proxy.Labels[gatewayNameLabel]
	if len(refs) == 0 {
		return labelsMatch(spec.GetSelector().GetMatchLabels(), t.proxy.Labels)
	}
	if !gatewayAPI {
		t.warn(wasmKey(p), "spec.targetRefs", "targetRefs attach a plugin to the proxies of Gateway API Gateways; this gateway has no %s label, so the plugin is not for it", gatewayNameLabel)
		return false
	}
	if p.Namespace != t.proxy.Namespace {
		return false
	}
	for _, r := range refs {
		if r.GetNamespace() != "" && r.GetNamespace() != t.proxy.Namespace {
			continue
		}
		if isGatewayAPIGroup(r.GetGroup()) && r.GetKind() == "Gateway" && r.GetName() == gwName {
			return true
		}
	}
	return false
}

func isGatewayAPIGroup(g string) bool { return g == "gateway.networking.k8s.io" }

// wasmMatchesGateway applies spec.match's modes: a gateway's traffic is
// client traffic, so SERVER-only selectors leave the plugin out. Ports
// are applied per listener (wasmMatchesPort).
func (t *translator) wasmMatchesGateway(p *extensions.WasmPlugin) bool {
	ms := p.Spec.GetMatch()
	if len(ms) == 0 {
		return true
	}
	for _, m := range ms {
		if m.GetMode() != typev1beta1.WorkloadMode_SERVER {
			return true
		}
	}
	return false
}

// wasmMatchesPort tells whether a plugin runs on a listener's port: a
// traffic selector taking client traffic with no ports, or listing it.
func wasmMatchesPort(p *extensions.WasmPlugin, port uint32) bool {
	ms := p.Spec.GetMatch()
	if len(ms) == 0 {
		return true
	}
	for _, m := range ms {
		if m.GetMode() == typev1beta1.WorkloadMode_SERVER {
			continue
		}
		if len(m.GetPorts()) == 0 {
			return true
		}
		for _, ps := range m.GetPorts() {
			if ps.GetNumber() != 0 && ps.GetNumber() == port {
				return true
			}
		}
	}
	return false
}

func wasmKey(p *extensions.WasmPlugin) istio.Key {
	return istio.Key{Kind: "WasmPlugin", Namespace: p.Namespace, Name: p.Name}
}

// wasmChain is the selected plugins, split by type, with the ECDS
// resources that configure them; built once per translation.
type wasmChain struct {
	http, network []wasmPlugin
	byName        map[string]*extensions.WasmPlugin
	extensions    []*corev3.TypedExtensionConfig
}

// wasmPlugins selects and translates the plugins once.
func (t *translator) wasmPlugins() *wasmChain {
	if t.wasm != nil {
		return t.wasm
	}
	t.wasm = &wasmChain{byName: map[string]*extensions.WasmPlugin{}}
	for _, p := range t.selectWasmPlugins() {
		ext := t.wasmExtensionConfig(p)
		if ext == nil {
			continue
		}
		w := wasmPlugin{p: p, name: ext.GetName()}
		if p.Spec.GetType() == extensionsv1alpha1.PluginType_NETWORK {
			t.wasm.network = append(t.wasm.network, w)
		} else {
			t.wasm.http = append(t.wasm.http, w)
		}
		t.wasm.byName[w.name] = p
		t.wasm.extensions = append(t.wasm.extensions, ext)
	}
	sort.Slice(t.wasm.extensions, func(i, j int) bool { return t.wasm.extensions[i].GetName() < t.wasm.extensions[j].GetName() })
	return t.wasm
}

// wasmFilter is one plugin's HTTP filter with the phase that places it.
type wasmFilter struct {
	phase  extensionsv1alpha1.PluginPhase
	filter *hcmv3.HttpFilter
}

// wasmHTTPFilters are the HTTP plugins' filters, in order: each names
// its ECDS resource, as istiod's chain does. Plugins whose traffic
// selectors leave a listener's port out are removed per listener by
// finishWasm.
func (t *translator) wasmHTTPFilters() []wasmFilter {
	var out []wasmFilter
	for _, w := range t.wasmPlugins().http {
		out = append(out, wasmFilter{phase: w.p.Spec.GetPhase(), filter: &hcmv3.HttpFilter{
			Name:       w.name,
			ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: wasmConfigSource(wasmHTTPType, rbacHTTPType)},
		}})
	}
	return out
}

// withWasmFilters places the plugins' filters by phase, as istiod's
// gateway chain does: AUTHN before jwt_authn, AUTHZ between jwt_authn
// and the authorization filters (ext_authz, rbac), STATS then
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
	var authn, authz, stats, rest []*hcmv3.HttpFilter
	for _, w := range wasm {
		switch w.phase {
		case extensionsv1alpha1.PluginPhase_AUTHN:
			authn = append(authn, w.filter)
		case extensionsv1alpha1.PluginPhase_AUTHZ:
			authz = append(authz, w.filter)
		case extensionsv1alpha1.PluginPhase_STATS:
			stats = append(stats, w.filter)
		default:
			rest = append(rest, w.filter)
		}
	}
	rest = append(stats, rest...)
	out := make([]*hcmv3.HttpFilter, 0, len(chain)+len(wasm))
	out = append(out, authn...)
	out = append(out, chain[:afterAuthn]...)
	out = append(out, authz...)
	out = append(out, chain[afterAuthn:afterAuthz]...)
	out = append(out, rest...)
	return append(out, chain[afterAuthz:]...)
}
