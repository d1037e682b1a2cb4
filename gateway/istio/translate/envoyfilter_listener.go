package translate

import (
	"slices"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"istio.io/api/networking/v1alpha3"
)

// Listener-side patches: LISTENER, FILTER_CHAIN, NETWORK_FILTER and
// HTTP_FILTER, matched by listener port and name, then filter chain
// (name, SNI, transport and application protocols, destination port, the
// network filter it holds and, for HTTP filters, the HTTP filter).

// hcmName is the HTTP connection manager's filter name.
const hcmName = "envoy.filters.network.http_connection_manager"

// deprecatedFilterNames maps the filter names Envoy once used, which
// older EnvoyFilters still match on, to the current ones.
var deprecatedFilterNames = map[string]string{
	"envoy.http_connection_manager": hcmName,
	"envoy.tcp_proxy":               "envoy.filters.network.tcp_proxy",
	"envoy.router":                  "envoy.filters.http.router",
	"envoy.cors":                    "envoy.filters.http.cors",
	"envoy.fault":                   "envoy.filters.http.fault",
	"envoy.lua":                     "envoy.filters.http.lua",
	"envoy.filters.http.jwt_authn":  "envoy.filters.http.jwt_authn",
	"envoy.ext_authz":               "envoy.filters.http.ext_authz",
	"envoy.rate_limit":              "envoy.filters.http.ratelimit",
	"envoy.gzip":                    "envoy.filters.http.gzip",
}

// filterNamed reports whether a filter called name is the one a match
// names: want empty matches any filter.
func filterNamed(name, want string) bool {
	if want == "" {
		return true
	}
	if n, ok := deprecatedFilterNames[want]; ok {
		want = n
	}
	return name == want
}

// listenerMatches reports whether l is a listener the match names; its
// filter chain part matters only with chains (some chain must match).
func listenerMatches(l *listenerv3.Listener, lm *v1alpha3.EnvoyFilter_ListenerMatch, chains bool) bool {
	if lm.GetPortName() != "" {
		return false
	}
	if lf := lm.GetListenerFilter(); lf != "" && !slices.ContainsFunc(l.GetListenerFilters(), func(f *listenerv3.ListenerFilter) bool { return f.GetName() == lf }) {
		return false
	}
	if lm.GetName() != "" && lm.GetName() != l.GetName() {
		return false
	}
	if p := lm.GetPortNumber(); p != 0 && p != l.GetAddress().GetSocketAddress().GetPortValue() {
		return false
	}
	if chains && lm.GetFilterChain() != nil {
		return slices.ContainsFunc(l.GetFilterChains(), func(fc *listenerv3.FilterChain) bool { return chainMatches(fc, lm.GetFilterChain()) })
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
	if m.GetTransportProtocol() != "" && m.GetTransportProtocol() != cmpOr(fcm.GetTransportProtocol(), "raw_buffer") {
		return false
	}
	if ap := m.GetApplicationProtocols(); ap != "" {
		found := false
		for _, p := range strings.Split(ap, ",") {
			if slices.Contains(fcm.GetApplicationProtocols(), strings.TrimSpace(p)) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	if p := m.GetDestinationPort(); p != 0 && p != fcm.GetDestinationPort().GetValue() {
		return false
	}
	if f := m.GetFilter(); f != nil {
		return slices.ContainsFunc(fc.GetFilters(), func(nf *listenerv3.Filter) bool { return networkFilterMatches(nf, f) })
	}
	return true
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// networkFilterMatches reports whether nf is the network filter the
// match names, holding the HTTP filter its subFilter names if any.
func networkFilterMatches(nf *listenerv3.Filter, m *v1alpha3.EnvoyFilter_ListenerMatch_FilterMatch) bool {
	if !filterNamed(nf.GetName(), m.GetName()) {
		return false
	}
	if sub := m.GetSubFilter().GetName(); sub != "" {
		hcm := decodeHCM(nf)
		return hcm != nil && slices.ContainsFunc(hcm.GetHttpFilters(), func(h *hcmv3.HttpFilter) bool { return filterNamed(h.GetName(), sub) })
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

// patchListeners applies a LISTENER patch.
func patchListeners(ls []*listenerv3.Listener, p envoyPatch) []*listenerv3.Listener {
	lm := p.match().GetListener()
	return patchList(ls, p.op(), func(l *listenerv3.Listener) bool { return listenerMatches(l, lm, true) }, p.value)
}

// patchListenerFilters applies a LISTENER_FILTER patch to the listener
// filters of every matching listener, relative to the listener filter
// the match names.
func patchListenerFilters(ls []*listenerv3.Listener, p envoyPatch) {
	lm := p.match().GetListener()
	name := lm.GetListenerFilter()
	// The named listener filter is where the patch goes, not a
	// condition on the listener: INSERT_FIRST and ADD apply to a
	// listener without it.
	where := &v1alpha3.EnvoyFilter_ListenerMatch{PortNumber: lm.GetPortNumber(), Name: lm.GetName(), FilterChain: lm.GetFilterChain()}
	for _, l := range ls {
		if !listenerMatches(l, where, true) {
			continue
		}
		l.ListenerFilters = patchList(l.ListenerFilters, relativeOp(p.op(), name != ""), func(f *listenerv3.ListenerFilter) bool {
			return name != "" && f.GetName() == name
		}, p.value)
	}
}

// patchFilterChains applies a FILTER_CHAIN patch: ADD appends the chain
// to every matching listener, REMOVE and MERGE act on matching chains.
func patchFilterChains(ls []*listenerv3.Listener, p envoyPatch) {
	lm := p.match().GetListener()
	for _, l := range ls {
		if !listenerMatches(l, lm, false) {
			continue
		}
		l.FilterChains = patchList(l.FilterChains, p.op(), func(fc *listenerv3.FilterChain) bool { return chainMatches(fc, lm.GetFilterChain()) }, p.value)
	}
}

// patchNetworkFilters applies a NETWORK_FILTER patch to the filters of
// every matching chain, relative to the filter the match names.
func patchNetworkFilters(ls []*listenerv3.Listener, p envoyPatch) {
	lm := p.match().GetListener()
	fm := lm.GetFilterChain().GetFilter()
	for _, l := range ls {
		if !listenerMatches(l, lm, false) {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			if !chainMatches(fc, lm.GetFilterChain()) {
				continue
			}
			fc.Filters = patchList(fc.Filters, relativeOp(p.op(), fm.GetName() != ""), func(nf *listenerv3.Filter) bool {
				return fm.GetName() != "" && networkFilterMatches(nf, &v1alpha3.EnvoyFilter_ListenerMatch_FilterMatch{Name: fm.GetName()})
			}, p.value)
		}
	}
}

// patchHTTPFilters applies an HTTP_FILTER patch to the HTTP filters of
// the connection manager in every matching chain, relative to the HTTP
// filter the match's subFilter names. A patch with a filter class
// instead goes where Istio puts that class: AUTHN after JWT
// authentication, AUTHZ after the authorization filters, STATS before
// the router.
func (t *translator) patchHTTPFilters(ls []*listenerv3.Listener, p envoyPatch) {
	lm := p.match().GetListener()
	sub := lm.GetFilterChain().GetFilter().GetSubFilter().GetName()
	for _, l := range ls {
		if !listenerMatches(l, lm, false) {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			if !chainMatches(fc, lm.GetFilterChain()) {
				continue
			}
			for _, nf := range fc.GetFilters() {
				if !filterNamed(nf.GetName(), cmpOr(lm.GetFilterChain().GetFilter().GetName(), hcmName)) {
					continue
				}
				hcm := decodeHCM(nf)
				if hcm == nil {
					continue
				}
				if class := p.cp.GetPatch().GetFilterClass(); class != v1alpha3.EnvoyFilter_Patch_UNSPECIFIED && isInsert(p.op()) {
					hcm.HttpFilters = insertByClass(hcm.HttpFilters, class, p.value.(*hcmv3.HttpFilter))
				} else {
					hcm.HttpFilters = patchList(hcm.HttpFilters, relativeOp(p.op(), sub != ""), func(h *hcmv3.HttpFilter) bool {
						return sub != "" && filterNamed(h.GetName(), sub)
					}, p.value)
				}
				a, err := anypb.New(hcm)
				if err != nil {
					t.warn(p.key, p.field, "re-encoding the connection manager of listener %s: %v", l.GetName(), err)
					continue
				}
				nf.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
			}
		}
	}
}

func isInsert(op v1alpha3.EnvoyFilter_Patch_Operation) bool {
	switch op {
	case v1alpha3.EnvoyFilter_Patch_ADD, v1alpha3.EnvoyFilter_Patch_INSERT_BEFORE, v1alpha3.EnvoyFilter_Patch_INSERT_AFTER, v1alpha3.EnvoyFilter_Patch_INSERT_FIRST:
		return true
	}
	return false
}

// insertByClass inserts f where Istio places a filter of its class.
func insertByClass(hs []*hcmv3.HttpFilter, class v1alpha3.EnvoyFilter_Patch_FilterClass, f *hcmv3.HttpFilter) []*hcmv3.HttpFilter {
	last := func(names ...string) int {
		at := -1
		for i, h := range hs {
			if slices.Contains(names, h.GetName()) {
				at = i
			}
		}
		return at
	}
	at := 0
	switch class {
	case v1alpha3.EnvoyFilter_Patch_AUTHN:
		at = last("envoy.filters.http.jwt_authn") + 1
	case v1alpha3.EnvoyFilter_Patch_AUTHZ:
		at = max(last("envoy.filters.http.jwt_authn"), last("envoy.filters.http.rbac", "envoy.filters.http.ext_authz")) + 1
	case v1alpha3.EnvoyFilter_Patch_STATS:
		at = len(hs)
		if r := last("envoy.filters.http.router"); r >= 0 {
			at = r
		}
	}
	return slices.Insert(hs, at, f)
}
