package translate

import (
	"cmp"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"istio.io/api/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

// virtualService is a VirtualService with its hosts and gateways
// resolved.
type virtualService struct {
	key  istio.Key
	spec *v1alpha3.VirtualService
	// hosts are lower-case FQDNs or wildcards.
	hosts []string
	// gateways are "namespace/name", or "mesh".
	gateways []string
	time     int64
	// fields are the config paths of spec.Http's rules when delegation
	// replaced some (spec.http[i].delegate(ns/name).http[j]); nil
	// otherwise, when rule i is spec.http[i].
	fields []string
	// metadata is the filter_metadata of every route made from this
	// VirtualService, made once and shared: it is the same for all of
	// them, and never changed once made (a VirtualService of 10,000
	// routes held 10,000 copies, 8 MiB).
	metadata *corev3.Metadata
}

// virtualServices returns the VirtualServices bound to the gateway named
// "namespace/name", oldest first then by name and namespace: the order
// istiod concatenates their routes in
// (https://istio.io/latest/docs/ops/best-practices/traffic-management/#split-virtual-services).
// A VirtualService without gateways applies to "mesh" only.
func (t *translator) virtualServices(gateway string) []*virtualService {
	var out []*virtualService
	for _, vs := range t.vss {
		if slices.Contains(vs.gateways, gateway) {
			out = append(out, vs)
		}
	}
	return out
}

func (t *translator) allVirtualServices() []*virtualService {
	var out []*virtualService
	for _, v := range t.cfg.VirtualServices {
		// A delegate is seen from its root's namespace (resolveDelegates).
		if v == nil || (len(v.Spec.Hosts) > 0 && !exportedTo(v.Spec.ExportTo, v.Namespace, t.proxy.Namespace)) {
			continue
		}
		vs := &virtualService{
			key:  istio.Key{Kind: "VirtualService", Namespace: v.Namespace, Name: v.Name},
			spec: &v.Spec,
			time: v.CreationTimestamp.UnixNano(),
		}
		for _, h := range v.Spec.Hosts {
			vs.hosts = append(vs.hosts, strings.ToLower(t.fqdn(h, v.Namespace)))
		}
		gws := v.Spec.Gateways
		if len(gws) == 0 {
			gws = []string{"mesh"}
		}
		for _, g := range gws {
			vs.gateways = append(vs.gateways, resolveGatewayName(g, v.Namespace))
		}
		out = append(out, vs)
	}
	slices.SortStableFunc(out, func(a, b *virtualService) int {
		return cmp.Or(cmp.Compare(a.time, b.time), cmp.Compare(a.key.Name, b.key.Name), cmp.Compare(a.key.Namespace, b.key.Namespace))
	})
	return t.resolveDelegates(out)
}

// resolveGatewayName turns a gateway reference of a VirtualService into
// "namespace/name": a short name is in the VirtualService's namespace.
func resolveGatewayName(g, namespace string) string {
	if g == "mesh" || strings.Contains(g, "/") {
		return g
	}
	// The deprecated FQDN form name.namespace.svc.<suffix>.
	if parts := strings.Split(g, "."); len(parts) > 2 && parts[2] == "svc" {
		return parts[1] + "/" + parts[0]
	}
	return namespace + "/" + g
}
