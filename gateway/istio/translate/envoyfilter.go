package translate

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

// EnvoyFilters, as istiod applies them to a gateway
// (https://istio.io/latest/docs/reference/config/networking/envoy-filter/):
// once the gateway's resources are generated, the EnvoyFilters that
// select it patch them. An EnvoyFilter in the root namespace
// (istio-system) selects gateways in every namespace, one elsewhere only
// gateways in its own namespace; its workloadSelector, if any, must match
// the gateway's labels. They apply in order of priority, root namespace
// first, then oldest first, then by name. Patches for sidecars
// (SIDECAR_INBOUND, SIDECAR_OUTBOUND) and waypoints never apply to a
// gateway. A patch that matches nothing changes nothing.
//
// As in istiod, each list is patched from the outside in (a listener,
// its listener filters, its filter chains, their network and HTTP
// filters; a route configuration, its virtual hosts, their routes), and
// at the levels where istiod adds last (listeners, filter chains,
// virtual hosts, clusters) every other patch goes first, so that no
// patch applies to what another one added.

// applyEnvoyFilters patches res with the EnvoyFilters selecting the
// gateway.
func (t *translator) applyEnvoyFilters(res *Resources) {
	patches := t.envoyPatches()
	if len(patches) == 0 {
		return
	}
	// Generated resources share messages (default timeouts, config
	// sources, filter configs); patches change them in place, so each
	// resource gets its own copy first.
	cloneAll(res.Listeners)
	cloneAll(res.Routes)
	cloneAll(res.Clusters)
	of := func(at v1alpha3.EnvoyFilter_ApplyTo) []envoyPatch {
		var out []envoyPatch
		for _, p := range patches {
			if p.cp.GetApplyTo() == at {
				out = append(out, p)
			}
		}
		return out
	}
	res.Clusters, res.Endpoints = patchClusters(res.Clusters, res.Endpoints, of(v1alpha3.EnvoyFilter_CLUSTER))
	res.Listeners = t.patchListeners(res.Listeners, listenerPatches{
		listeners:       of(v1alpha3.EnvoyFilter_LISTENER),
		listenerFilters: of(v1alpha3.EnvoyFilter_LISTENER_FILTER),
		chains:          of(v1alpha3.EnvoyFilter_FILTER_CHAIN),
		network:         of(v1alpha3.EnvoyFilter_NETWORK_FILTER),
		http:            of(v1alpha3.EnvoyFilter_HTTP_FILTER),
	})
	patchRouteConfigurations(res.Routes, of(v1alpha3.EnvoyFilter_ROUTE_CONFIGURATION), of(v1alpha3.EnvoyFilter_VIRTUAL_HOST), of(v1alpha3.EnvoyFilter_HTTP_ROUTE))
	res.Extensions = addExtensionConfigs(res.Extensions, of(v1alpha3.EnvoyFilter_EXTENSION_CONFIG))
}

// addExtensionConfigs adds the ECDS resources EXTENSION_CONFIG patches
// carry (ADD is the one operation istiod allows there); one named like
// a generated resource replaces it.
func addExtensionConfigs(exts []*corev3.TypedExtensionConfig, patches []envoyPatch) []*corev3.TypedExtensionConfig {
	for _, p := range patches {
		e := cloneOf[*corev3.TypedExtensionConfig](p.value)
		exts = slices.DeleteFunc(exts, func(x *corev3.TypedExtensionConfig) bool { return x.GetName() == e.GetName() })
		exts = append(exts, e)
	}
	return exts
}

func cloneOf[T proto.Message](m proto.Message) T { return proto.Clone(m).(T) }

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

// adds reports whether the patch adds an element at a level where every
// insertion is an addition at the end (listeners, filter chains,
// virtual hosts, clusters: istiod treats INSERT_* there as ADD).
func (p envoyPatch) adds() bool {
	switch p.op() {
	case v1alpha3.EnvoyFilter_Patch_ADD, v1alpha3.EnvoyFilter_Patch_INSERT_BEFORE, v1alpha3.EnvoyFilter_Patch_INSERT_AFTER, v1alpha3.EnvoyFilter_Patch_INSERT_FIRST:
		return true
	}
	return false
}

// envoyPatches are the patches of the EnvoyFilters selecting the
// gateway whose context and proxy match fit it, in the order they
// apply, each with its decoded value.
func (t *translator) envoyPatches() []envoyPatch {
	var out []envoyPatch
	for _, ef := range t.envoyFilters() {
		key := istio.Key{Kind: "EnvoyFilter", Namespace: ef.Namespace, Name: ef.Name}
		for i, cp := range ef.Spec.GetConfigPatches() {
			if !t.patchApplies(cp.GetMatch()) {
				continue
			}
			p := envoyPatch{key: key, field: indexField("spec.configPatches", i), cp: cp}
			if cp.GetPatch().GetOperation() != v1alpha3.EnvoyFilter_Patch_REMOVE {
				v, err := istio.EnvoyFilterValue(cp.GetApplyTo(), cp.GetPatch().GetValue())
				if err != nil {
					t.warn(key, p.field+".patch.value", "%v; the patch is skipped", err)
					continue
				}
				p.value = v
			}
			out = append(out, p)
		}
	}
	return out
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
			a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time),
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Namespace, b.Namespace))
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
	for k, v := range m.GetProxy().GetMetadata() {
		if t.proxy.Metadata[k] != v {
			return false
		}
	}
	if pv := m.GetProxy().GetProxyVersion(); pv != "" {
		re, err := regexp.Compile(pv)
		if err != nil || t.proxy.IstioVersion == "" || !re.MatchString(t.proxy.IstioVersion) {
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
// merges the value into each, REPLACE replaces the first.
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
		if first >= 0 {
			list[first] = clone()
		}
	}
	return list
}

// patchExisting applies to list the patches applies accepts, in order,
// except the additions, which it returns apart (cloned) for the caller
// to append once it has patched the elements there were further: where
// istiod adds last, no patch applies to what another one added.
func patchExisting[T proto.Message](list []T, patches []envoyPatch, applies func(envoyPatch) bool, matches func(envoyPatch, T) bool) (out, added []T) {
	for _, p := range patches {
		if !applies(p) {
			continue
		}
		if p.adds() {
			added = append(added, cloneOf[T](p.value))
			continue
		}
		list = patchList(list, p.op(), func(x T) bool { return matches(p, x) }, p.value)
	}
	return list, added
}

func always(envoyPatch) bool { return true }

// relativeOp is the operation a filter patch performs: INSERT_BEFORE and
// INSERT_AFTER with no filter to be relative to insert first and last,
// as in istiod.
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
