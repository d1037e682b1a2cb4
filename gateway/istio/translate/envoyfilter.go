package translate

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

// EnvoyFilters, as istiod applies them to a gateway
// (https://istio.io/latest/docs/reference/config/networking/envoy-filter/):
// once the gateway's resources are generated, each EnvoyFilter that
// selects it patches them, patch by patch. An EnvoyFilter in the root
// namespace (istio-system) selects gateways in every namespace, one
// elsewhere only gateways in its own namespace; its workloadSelector, if
// any, must match the gateway's labels. They apply in order of priority,
// then those of the root namespace first, then by namespace and name.
// Patches for sidecars (SIDECAR_INBOUND, SIDECAR_OUTBOUND) and waypoints
// never apply to a gateway. A patch that matches nothing changes
// nothing, as in istiod.

// applyEnvoyFilters patches res with the EnvoyFilters selecting the
// gateway.
func (t *translator) applyEnvoyFilters(res *Resources) {
	efs := t.envoyFilters()
	if len(efs) == 0 {
		return
	}
	// Generated resources share messages (default timeouts, config
	// sources, filter configs); patches change them in place, so each
	// resource gets its own copy first.
	cloneAll(res.Listeners)
	cloneAll(res.Routes)
	cloneAll(res.Clusters)
	for _, ef := range efs {
		key := istio.Key{Kind: "EnvoyFilter", Namespace: ef.Namespace, Name: ef.Name}
		for i, cp := range ef.Spec.GetConfigPatches() {
			if !t.patchApplies(cp.GetMatch()) {
				continue
			}
			p := envoyPatch{key: key, field: indexField("spec.configPatches", i), cp: cp}
			if op := cp.GetPatch().GetOperation(); op != v1alpha3.EnvoyFilter_Patch_REMOVE {
				v, err := istio.EnvoyFilterValue(cp.GetApplyTo(), cp.GetPatch().GetValue())
				if err != nil {
					t.warn(key, p.field+".patch.value", "%v; the patch is skipped", err)
					continue
				}
				p.value = v
			}
			switch cp.GetApplyTo() {
			case v1alpha3.EnvoyFilter_LISTENER:
				res.Listeners = patchListeners(res.Listeners, p)
			case v1alpha3.EnvoyFilter_FILTER_CHAIN:
				patchFilterChains(res.Listeners, p)
			case v1alpha3.EnvoyFilter_LISTENER_FILTER:
				patchListenerFilters(res.Listeners, p)
			case v1alpha3.EnvoyFilter_NETWORK_FILTER:
				patchNetworkFilters(res.Listeners, p)
			case v1alpha3.EnvoyFilter_HTTP_FILTER:
				t.patchHTTPFilters(res.Listeners, p)
			case v1alpha3.EnvoyFilter_ROUTE_CONFIGURATION:
				patchRouteConfigurations(res.Routes, p)
			case v1alpha3.EnvoyFilter_VIRTUAL_HOST:
				patchVirtualHosts(res.Routes, p)
			case v1alpha3.EnvoyFilter_HTTP_ROUTE:
				patchRoutes(res.Routes, p)
			case v1alpha3.EnvoyFilter_CLUSTER:
				res.Clusters, res.Endpoints = patchClusters(res.Clusters, res.Endpoints, p)
			}
		}
	}
}

func cloneAll[T proto.Message](list []T) {
	for i, x := range list {
		list[i] = proto.Clone(x).(T)
	}
}

// envoyPatch is one config patch of an EnvoyFilter, with its value
// decoded into the Envoy message it patches (nil for REMOVE).
type envoyPatch struct {
	key   istio.Key
	field string
	cp    *v1alpha3.EnvoyFilter_EnvoyConfigObjectPatch
	value proto.Message
}

func (p envoyPatch) op() v1alpha3.EnvoyFilter_Patch_Operation { return p.cp.GetPatch().GetOperation() }
func (p envoyPatch) match() *v1alpha3.EnvoyFilter_EnvoyConfigObjectMatch {
	return p.cp.GetMatch()
}

// envoyFilters are the EnvoyFilters selecting the gateway, in the order
// they apply.
func (t *translator) envoyFilters() []*networkingv1alpha3.EnvoyFilter {
	var out []*networkingv1alpha3.EnvoyFilter
	for _, ef := range t.cfg.EnvoyFilters {
		if ef == nil || len(ef.Spec.GetTargetRefs()) > 0 {
			continue
		}
		if ef.Namespace != rootNamespace && ef.Namespace != t.proxy.Namespace {
			continue
		}
		if !labelsSubset(ef.Spec.GetWorkloadSelector().GetLabels(), t.proxy.Labels) {
			continue
		}
		out = append(out, ef)
	}
	slices.SortStableFunc(out, func(a, b *networkingv1alpha3.EnvoyFilter) int {
		return cmp.Or(
			cmp.Compare(a.Spec.GetPriority(), b.Spec.GetPriority()),
			-cmp.Compare(boolInt(a.Namespace == rootNamespace), boolInt(b.Namespace == rootNamespace)),
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name))
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// patchApplies reports whether a patch's context and proxy match fit
// this gateway.
func (t *translator) patchApplies(m *v1alpha3.EnvoyFilter_EnvoyConfigObjectMatch) bool {
	switch m.GetContext() {
	case v1alpha3.EnvoyFilter_ANY, v1alpha3.EnvoyFilter_GATEWAY:
	default:
		return false
	}
	if len(m.GetProxy().GetMetadata()) > 0 {
		return false
	}
	if pv := m.GetProxy().GetProxyVersion(); pv != "" {
		re, err := regexp.Compile(pv)
		if err != nil || !re.MatchString(t.proxy.IstioVersion) {
			return false
		}
	}
	return true
}

// patchList applies a patch's operation to list: matches picks the
// elements the patch names, value is the patch's value (cloned for each
// use, as one patch may apply to many lists). ADD appends, INSERT_FIRST
// prepends, INSERT_BEFORE and INSERT_AFTER insert next to the first
// match (nothing when none matches), REMOVE drops every match, MERGE
// merges the value into each, REPLACE replaces each.
func patchList[T proto.Message](list []T, op v1alpha3.EnvoyFilter_Patch_Operation, matches func(T) bool, value proto.Message) []T {
	clone := func() T { return proto.Clone(value).(T) }
	first := slices.IndexFunc(list, matches)
	switch op {
	case v1alpha3.EnvoyFilter_Patch_ADD:
		return append(list, clone())
	case v1alpha3.EnvoyFilter_Patch_INSERT_FIRST:
		return slices.Insert(list, 0, clone())
	case v1alpha3.EnvoyFilter_Patch_INSERT_BEFORE:
		if first >= 0 {
			return slices.Insert(list, first, clone())
		}
	case v1alpha3.EnvoyFilter_Patch_INSERT_AFTER:
		if first >= 0 {
			return slices.Insert(list, first+1, clone())
		}
	case v1alpha3.EnvoyFilter_Patch_REMOVE:
		return slices.DeleteFunc(list, matches)
	case v1alpha3.EnvoyFilter_Patch_MERGE:
		for _, x := range list {
			if matches(x) {
				mergeMessage(x, value)
			}
		}
	case v1alpha3.EnvoyFilter_Patch_REPLACE:
		for i, x := range list {
			if matches(x) {
				list[i] = clone()
			}
		}
	}
	return list
}

// relativeOp is the operation a patch performs: INSERT_BEFORE and
// INSERT_AFTER with nothing to be relative to (the match names no
// element) insert first and last, as in istiod.
func relativeOp(op v1alpha3.EnvoyFilter_Patch_Operation, named bool) v1alpha3.EnvoyFilter_Patch_Operation {
	switch {
	case named:
		return op
	case op == v1alpha3.EnvoyFilter_Patch_INSERT_BEFORE:
		return v1alpha3.EnvoyFilter_Patch_INSERT_FIRST
	case op == v1alpha3.EnvoyFilter_Patch_INSERT_AFTER:
		return v1alpha3.EnvoyFilter_Patch_ADD
	}
	return op
}

func indexField(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
