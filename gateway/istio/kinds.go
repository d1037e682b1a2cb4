package istio

import (
	"strings"

	"google.golang.org/protobuf/proto"
	extensions "istio.io/client-go/pkg/apis/extensions/v1alpha1"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	security "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kind describes one resource kind the loader decodes. Adding a kind
// (such as Waygate's own RateLimitPolicy in waygate.dev) is one entry in
// kinds: the versions accepted, and how to allocate the typed resource.
type kind struct {
	group string
	name  string
	// versions are the API versions accepted; the first is the one the
	// resource is stored as (older ones have the same spec proto).
	versions []string
	// build allocates the typed resource with meta, and returns its spec
	// for the decoder to fill and a function adding it to a Config.
	build func(meta metav1.ObjectMeta) (spec proto.Message, add func(*Config))
}

var networkingVersions = []string{"v1", "v1beta1", "v1alpha3"}
var securityVersions = []string{"v1", "v1beta1"}

func typeMeta(group, version, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: group + "/" + version, Kind: kind}
}

// kinds is keyed by group + "/" + kind.
var kinds = map[string]kind{}

func init() {
	for _, k := range []kind{
		{"networking.istio.io", "Gateway", networkingVersions, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &networking.Gateway{TypeMeta: typeMeta("networking.istio.io", "v1", "Gateway"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.Gateways = append(c.Gateways, r) }
		}},
		{"networking.istio.io", "VirtualService", networkingVersions, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &networking.VirtualService{TypeMeta: typeMeta("networking.istio.io", "v1", "VirtualService"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.VirtualServices = append(c.VirtualServices, r) }
		}},
		{"networking.istio.io", "DestinationRule", networkingVersions, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &networking.DestinationRule{TypeMeta: typeMeta("networking.istio.io", "v1", "DestinationRule"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.DestinationRules = append(c.DestinationRules, r) }
		}},
		{"networking.istio.io", "ServiceEntry", networkingVersions, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &networking.ServiceEntry{TypeMeta: typeMeta("networking.istio.io", "v1", "ServiceEntry"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.ServiceEntries = append(c.ServiceEntries, r) }
		}},
		{"networking.istio.io", "WorkloadEntry", networkingVersions, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &networking.WorkloadEntry{TypeMeta: typeMeta("networking.istio.io", "v1", "WorkloadEntry"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.WorkloadEntries = append(c.WorkloadEntries, r) }
		}},
		{"networking.istio.io", "EnvoyFilter", []string{"v1alpha3"}, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &networkingv1alpha3.EnvoyFilter{TypeMeta: typeMeta("networking.istio.io", "v1alpha3", "EnvoyFilter"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.EnvoyFilters = append(c.EnvoyFilters, r) }
		}},
		{"security.istio.io", "AuthorizationPolicy", securityVersions, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &security.AuthorizationPolicy{TypeMeta: typeMeta("security.istio.io", "v1", "AuthorizationPolicy"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.AuthorizationPolicies = append(c.AuthorizationPolicies, r) }
		}},
		{"security.istio.io", "RequestAuthentication", securityVersions, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &security.RequestAuthentication{TypeMeta: typeMeta("security.istio.io", "v1", "RequestAuthentication"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.RequestAuthentications = append(c.RequestAuthentications, r) }
		}},
		{"security.istio.io", "PeerAuthentication", securityVersions, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &security.PeerAuthentication{TypeMeta: typeMeta("security.istio.io", "v1", "PeerAuthentication"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.PeerAuthentications = append(c.PeerAuthentications, r) }
		}},
		{"extensions.istio.io", "WasmPlugin", []string{"v1alpha1"}, func(m metav1.ObjectMeta) (proto.Message, func(*Config)) {
			r := &extensions.WasmPlugin{TypeMeta: typeMeta("extensions.istio.io", "v1alpha1", "WasmPlugin"), ObjectMeta: m}
			return &r.Spec, func(c *Config) { c.WasmPlugins = append(c.WasmPlugins, r) }
		}},
	} {
		kinds[k.group+"/"+k.name] = k
	}
}

// unsupportedKinds are real Istio kinds that Waygate does not act on: a
// file holding them is still valid, so they are skipped with a warning
// rather than rejected.
var unsupportedKinds = map[string]bool{
	"networking.istio.io/Sidecar":          true,
	"networking.istio.io/WorkloadGroup":    true,
	"networking.istio.io/ProxyConfig":      true,
	"telemetry.istio.io/Telemetry":         true,
	"extensions.istio.io/TrafficExtension": true,
}

// istioGroup reports whether group belongs to Istio, where an unknown kind
// is a mistake (a typo in the kind) rather than someone else's resource.
func istioGroup(group string) bool {
	return group == "istio.io" || strings.HasSuffix(group, ".istio.io")
}

// knownKindNames lists the kinds of group, for "valid kinds are" messages.
func knownKindNames(group string) []string {
	var names []string
	for _, k := range kinds {
		if k.group == group {
			names = append(names, k.name)
		}
	}
	for gk := range unsupportedKinds {
		if g, n, _ := strings.Cut(gk, "/"); g == group {
			names = append(names, n)
		}
	}
	return names
}
