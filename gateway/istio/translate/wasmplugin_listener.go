package translate

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
)

// finishWasm completes the plugins' placement once the listeners exist,
// since istiod selects plugins per listener port: HTTP plugins whose
// traffic selectors leave a listener's port out are taken out of its
// connection managers, NETWORK plugins go into its TCP filter chains
// before tcp_proxy. The ECDS resources of the plugins some listener
// uses are added to res.
func (t *translator) finishWasm(res *Resources) {
	w := t.wasmPlugins()
	if len(w.byName) == 0 {
		return
	}
	used := map[string]bool{}
	for _, l := range res.Listeners {
		port := l.GetAddress().GetSocketAddress().GetPortValue()
		chains := l.GetFilterChains()
		if d := l.GetDefaultFilterChain(); d != nil {
			chains = append(chains[:len(chains):len(chains)], d)
		}
		for _, fc := range chains {
			t.wasmForChain(fc, port, used)
		}
	}
	for _, e := range w.extensions {
		if used[e.GetName()] {
			res.Extensions = append(res.Extensions, e)
		}
	}
}

// wasmForChain fits one filter chain of a listener on port.
func (t *translator) wasmForChain(fc *listenerv3.FilterChain, port uint32, used map[string]bool) {
	w := t.wasm
	fs := fc.GetFilters()
	if len(fs) == 0 {
		return
	}
	last := fs[len(fs)-1]
	m := &hcmv3.HttpConnectionManager{}
	if last.GetTypedConfig().MessageIs(m) {
		if err := last.GetTypedConfig().UnmarshalTo(m); err != nil {
			return
		}
		kept := m.HttpFilters[:0:0]
		for _, f := range m.GetHttpFilters() {
			if p := w.byName[f.GetName()]; p != nil {
				if !wasmMatchesPort(p, port) {
					continue
				}
				used[f.GetName()] = true
			}
			kept = append(kept, f)
		}
		if len(kept) != len(m.GetHttpFilters()) {
			m.HttpFilters = kept
			last.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(m)}
		}
		for _, n := range w.network {
			if wasmMatchesPort(n.p, port) && !w.warned[n.name] {
				w.warned[n.name] = true
				t.warn(wasmKey(n.p), "spec.type", "NETWORK plugins run on TCP filter chains; Waygate runs no network filter before an HTTP connection manager, so HTTP ports go without it")
			}
		}
		return
	}
	if last.GetName() != tcpProxyFilter {
		return
	}
	var phases [4][]*listenerv3.Filter
	for _, n := range w.network {
		if !wasmMatchesPort(n.p, port) {
			continue
		}
		used[n.name] = true
		f := &listenerv3.Filter{
			Name:       n.name,
			ConfigType: &listenerv3.Filter_ConfigDiscovery{ConfigDiscovery: wasmConfigSource(wasmNetworkType, rbacNetworkType)},
		}
		i := 3
		switch n.p.Spec.GetPhase() {
		case extensionsv1alpha1.PluginPhase_AUTHN:
			i = 0
		case extensionsv1alpha1.PluginPhase_AUTHZ:
			i = 1
		case extensionsv1alpha1.PluginPhase_STATS:
			i = 2
		}
		phases[i] = append(phases[i], f)
	}
	// istiod's TCP chain: AUTHN and AUTHZ plugins, then STATS and
	// unspecified ones, then tcp_proxy.
	out := make([]*listenerv3.Filter, 0, len(fs)+len(w.network))
	out = append(out, fs[:len(fs)-1]...)
	for _, p := range phases {
		out = append(out, p...)
	}
	fc.Filters = append(out, last)
}
