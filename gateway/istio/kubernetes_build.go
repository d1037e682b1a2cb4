package istio

import (
	"sort"

	extensions "istio.io/client-go/pkg/apis/extensions/v1alpha1"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	security "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// build makes a Config from what the informers hold. Objects are copied:
// the informers' caches are shared and must never be changed, while a
// Config gets its TypeMeta filled like one loaded from a file.
func (l listers) build() (*Config, error) {
	cfg := newConfig()
	cfg.Gateways = list[*networking.Gateway](l.gateways.Informer(), "Gateway", cfg, func(r *networking.Gateway) *networking.Gateway {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("networking.istio.io", "v1", "Gateway")
		return r
	})
	cfg.VirtualServices = list[*networking.VirtualService](l.virtualServices.Informer(), "VirtualService", cfg, func(r *networking.VirtualService) *networking.VirtualService {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("networking.istio.io", "v1", "VirtualService")
		return r
	})
	cfg.DestinationRules = list[*networking.DestinationRule](l.destinationRules.Informer(), "DestinationRule", cfg, func(r *networking.DestinationRule) *networking.DestinationRule {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("networking.istio.io", "v1", "DestinationRule")
		return r
	})
	cfg.ServiceEntries = list[*networking.ServiceEntry](l.serviceEntries.Informer(), "ServiceEntry", cfg, func(r *networking.ServiceEntry) *networking.ServiceEntry {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("networking.istio.io", "v1", "ServiceEntry")
		return r
	})
	cfg.WorkloadEntries = list[*networking.WorkloadEntry](l.workloadEntries.Informer(), "WorkloadEntry", cfg, func(r *networking.WorkloadEntry) *networking.WorkloadEntry {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("networking.istio.io", "v1", "WorkloadEntry")
		return r
	})
	cfg.AuthorizationPolicies = list[*security.AuthorizationPolicy](l.authorization.Informer(), "AuthorizationPolicy", cfg, func(r *security.AuthorizationPolicy) *security.AuthorizationPolicy {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("security.istio.io", "v1", "AuthorizationPolicy")
		return r
	})
	cfg.RequestAuthentications = list[*security.RequestAuthentication](l.requestAuthn.Informer(), "RequestAuthentication", cfg, func(r *security.RequestAuthentication) *security.RequestAuthentication {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("security.istio.io", "v1", "RequestAuthentication")
		return r
	})
	cfg.PeerAuthentications = list[*security.PeerAuthentication](l.peerAuthn.Informer(), "PeerAuthentication", cfg, func(r *security.PeerAuthentication) *security.PeerAuthentication {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("security.istio.io", "v1", "PeerAuthentication")
		return r
	})
	cfg.WasmPlugins = list[*extensions.WasmPlugin](l.wasmPlugins.Informer(), "WasmPlugin", cfg, func(r *extensions.WasmPlugin) *extensions.WasmPlugin {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("extensions.istio.io", "v1alpha1", "WasmPlugin")
		return r
	})
	cfg.EnvoyFilters = list[*networkingv1alpha3.EnvoyFilter](l.envoyFilters.Informer(), "EnvoyFilter", cfg, func(r *networkingv1alpha3.EnvoyFilter) *networkingv1alpha3.EnvoyFilter {
		r = r.DeepCopy()
		r.TypeMeta = typeMeta("networking.istio.io", "v1alpha3", "EnvoyFilter")
		return r
	})

	services := storeItems[*corev1.Service](l.services.Informer())
	slices := storeItems[*discoveryv1.EndpointSlice](l.endpointSlices.Informer())
	pods := l.pods.Informer().GetStore()
	cfg.Services = buildServices(services, slices, func(ns, name string) map[string]string {
		obj, ok, err := pods.GetByKey(ns + "/" + name)
		if err != nil || !ok {
			return nil
		}
		if p, ok := obj.(*corev1.Pod); ok {
			return p.Labels
		}
		return nil
	})
	return cfg, nil
}

// list copies the resources of one informer into cfg's order (namespace,
// then name, so that a rebuild of the same state is the same Config) and
// records their origin: no file, the resource itself is the place to fix.
func list[T interface {
	object
	GetCreationTimestamp() metav1.Time
}](inf cache.SharedIndexInformer, kind string, cfg *Config, cp func(T) T) []T {
	items := storeItems[T](inf)
	out := make([]T, 0, len(items))
	for _, r := range items {
		out = append(out, cp(r))
		cfg.Origins[keyOf(kind, r)] = Origin{}
	}
	return out
}

func storeItems[T object](inf cache.SharedIndexInformer) []T {
	var out []T
	for _, obj := range inf.GetStore().List() {
		if r, ok := obj.(T); ok {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GetNamespace() != out[j].GetNamespace() {
			return out[i].GetNamespace() < out[j].GetNamespace()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out
}
