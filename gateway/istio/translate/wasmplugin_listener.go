package translate

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
)

// finishWasm completes the plugins' placement once the listeners exist,
// since istiod selects plugins per listener port: HTTP plugins whose
// traffic selectors leave a listener's port out are taken out of its
// connection managers, NETWORK plugins go into all its filter chains
// before tcp_proxy or the connection manager. The ECDS resources of the plugins some listener
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
		fc.Filters = t.withNetworkWasm(fs, port, used)
		return
	}
	if last.GetName() != tcpProxyFilter {
		return
	}
	fc.Filters = t.withNetworkWasm(fs, port, used)
}

// withNetworkWasm puts the NETWORK plugins that take port before the
// chain's last filter (tcp_proxy or http_connection_manager), by phase
// as istiod's chains have them: AUTHN, AUTHZ, STATS, then unspecified.
// istiod does the same before the connection manager of an HTTP port
// and of TLS-terminating servers, so that they see the connection
// before any request on it. (istiod's loop over a port's HTTPS servers
// takes the plugins out of the port's set as it places them, so only
// its first server's chain gets them; every chain gets them here, as
// the plugin's port selection asks.)
func (t *translator) withNetworkWasm(fs []*listenerv3.Filter, port uint32, used map[string]bool) []*listenerv3.Filter {
	w := t.wasm
	var phases [4][]*listenerv3.Filter
	n := 0
	for _, p := range w.network {
		if !wasmMatchesPort(p.p, port) {
			continue
		}
		used[p.name] = true
		f := &listenerv3.Filter{
			Name:       p.name,
			ConfigType: &listenerv3.Filter_ConfigDiscovery{ConfigDiscovery: wasmConfigSource(wasmNetworkType, rbacNetworkType)},
		}
		i := 3
		switch p.p.Spec.GetPhase() {
		case extensionsv1alpha1.PluginPhase_AUTHN:
			i = 0
		case extensionsv1alpha1.PluginPhase_AUTHZ:
			i = 1
		case extensionsv1alpha1.PluginPhase_STATS:
			i = 2
		}
		phases[i] = append(phases[i], f)
		n++
	}
	if n == 0 {
		return fs
	}
	last := fs[len(fs)-1]
	out := make([]*listenerv3.Filter, 0, len(fs)+n)
	out = append(out, fs[:len(fs)-1]...)
	for _, p := range phases {
		out = append(out, p...)
	}
	return append(out, last)
}
