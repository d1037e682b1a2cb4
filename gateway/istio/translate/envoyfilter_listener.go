package translate

import (
	"slices"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"istio.io/api/networking/v1alpha3"
)

// Listener-side patches: LISTENER, LISTENER_FILTER, FILTER_CHAIN,
// NETWORK_FILTER and HTTP_FILTER. As in istiod, a listener is matched by
// name and port; a filter chain by name, SNI, transport and application
// protocols and destination port; a network filter by name, and an HTTP
// filter by the name of the connection manager holding it and its own.
// Filter names are compared as they are: istiod no longer matches
// Envoy's deprecated names.

// hcmName is the HTTP connection manager's filter name.
const hcmName = "envoy.filters.network.http_connection_manager"

// listenerPatches are the listener-side patches, by what they apply to.
type listenerPatches struct {
	listeners, listenerFilters, chains, network, http []envoyPatch
}

// listenerMatches reports whether l is a listener the match names.
func listenerMatches(l *listenerv3.Listener, lm *v1alpha3.EnvoyFilter_ListenerMatch) bool {
	if lm.GetName() != "" && lm.GetName() != l.GetName() {
		return false
	}
	if p := lm.GetPortNumber(); p != 0 && p != l.GetAddress().GetSocketAddress().GetPortValue() {
		return false
	}
	return true
}

// chainMatches reports whether fc is a filter chain the match names.
func chainMatches(fc *listenerv3.FilterChain, m *v1alpha3.EnvoyFilter_ListenerMatch_FilterChainMatch) bool {
	if m == nil {
		return true
	}
	fcm := fc.GetFilterChainMatch()
	if m.GetName() != "" && m.GetName() != fc.GetName() {
		return false
	}
	if m.GetSni() != "" && !slices.Contains(fcm.GetServerNames(), m.GetSni()) {
		return false
	}
	if m.GetTransportProtocol() != "" && m.GetTransportProtocol() != fcm.GetTransportProtocol() {
		return false
	}
	if ap := m.GetApplicationProtocols(); ap != "" {
		for _, p := range strings.Split(ap, ",") {
			if !slices.Contains(fcm.GetApplicationProtocols(), strings.TrimSpace(p)) {
				return false
			}
		}
	}
	if p := m.GetDestinationPort(); p != 0 && p != fcm.GetDestinationPort().GetValue() {
		return false
	}
	return true
}

// decodeHCM returns the HTTP connection manager nf configures, nil when
// it is another filter.
func decodeHCM(nf *listenerv3.Filter) *hcmv3.HttpConnectionManager {
	tc := nf.GetTypedConfig()
	if tc == nil {
		return nil
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if tc.MessageIs(hcm) && tc.UnmarshalTo(hcm) == nil {
		return hcm
	}
	return nil
}

// patchListeners applies the listener-side patches, from the outside
// in; listeners and filter chains added by a patch are not patched
// further.
func (t *translator) patchListeners(ls []*listenerv3.Listener, ps listenerPatches) []*listenerv3.Listener {
	ls, added := patchExisting(ls, ps.listeners, always, func(p envoyPatch, l *listenerv3.Listener) bool {
		return listenerMatches(l, p.match().GetListener())
	})
	for _, l := range ls {
		for _, p := range ps.listenerFilters {
			lm := p.match().GetListener()
			if !listenerMatches(l, lm) {
				continue
			}
			name := lm.GetListenerFilter()
			l.ListenerFilters = patchList(l.ListenerFilters, relativeOp(p.op(), name != ""), func(f *listenerv3.ListenerFilter) bool {
				return name == "" || f.GetName() == name
			}, p.value)
		}
		chains, addedChains := patchExisting(l.GetFilterChains(), ps.chains,
			func(p envoyPatch) bool { return listenerMatches(l, p.match().GetListener()) },
			func(p envoyPatch, fc *listenerv3.FilterChain) bool {
				return chainMatches(fc, p.match().GetListener().GetFilterChain())
			})
		for _, fc := range chains {
			t.patchChainFilters(l, fc, ps)
		}
		l.FilterChains = append(chains, addedChains...)
	}
	return append(ls, added...)
}

// patchChainFilters applies the NETWORK_FILTER and HTTP_FILTER patches
// to one filter chain of l.
func (t *translator) patchChainFilters(l *listenerv3.Listener, fc *listenerv3.FilterChain, ps listenerPatches) {
	in := func(p envoyPatch) bool {
		lm := p.match().GetListener()
		return listenerMatches(l, lm) && chainMatches(fc, lm.GetFilterChain())
	}
	for _, p := range ps.network {
		if !in(p) {
			continue
		}
		name := p.match().GetListener().GetFilterChain().GetFilter().GetName()
		fc.Filters = patchList(fc.Filters, relativeOp(p.op(), name != ""), func(nf *listenerv3.Filter) bool {
			return name == "" || nf.GetName() == name
		}, p.value)
	}
	var http []envoyPatch
	for _, p := range ps.http {
		if in(p) {
			http = append(http, p)
		}
	}
	if len(http) == 0 {
		return
	}
	for _, nf := range fc.GetFilters() {
		hcm := decodeHCM(nf)
		if hcm == nil {
			continue
		}
		changed := false
		for _, p := range http {
			fm := p.match().GetListener().GetFilterChain().GetFilter()
			if n := fm.GetName(); n != "" && n != nf.GetName() {
				continue
			}
			sub := fm.GetSubFilter().GetName()
			hcm.HttpFilters = patchList(hcm.HttpFilters, relativeOp(p.op(), sub != ""), func(h *hcmv3.HttpFilter) bool {
				return sub == "" || h.GetName() == sub
			}, p.value)
			changed = true
		}
		if !changed {
			continue
		}
		a, err := anypb.New(hcm)
		if err != nil {
			t.warn(http[0].key, http[0].field, "re-encoding the connection manager of listener %s: %v", l.GetName(), err)
			continue
		}
		nf.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	}
}
