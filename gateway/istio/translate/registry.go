package translate

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"istio.io/api/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

// resolution is how a service's endpoints reach the proxy, after
// ServiceEntry resolution
// (https://istio.io/latest/docs/reference/config/networking/service-entry/#ServiceEntry-Resolution).
type resolution int

const (
	// resolutionEDS: endpoints are known addresses sent over EDS
	// (Kubernetes services and STATIC ServiceEntries).
	resolutionEDS resolution = iota
	// resolutionDNS: the proxy resolves the endpoint names (STRICT_DNS).
	resolutionDNS
	// resolutionDNSRoundRobin: the proxy resolves one name (LOGICAL_DNS).
	resolutionDNSRoundRobin
	// resolutionNone: connections go to the address the client asked for.
	resolutionNone
)

// service is a host of the registry with its ports and endpoints, in the
// one shape both Kubernetes Services and ServiceEntries take.
type service struct {
	hostname   string
	namespace  string
	source     istio.Key
	ports      []servicePort
	resolution resolution
	// external is a MESH_EXTERNAL ServiceEntry: istiod never originates
	// Istio mTLS to it.
	external  bool
	endpoints []serviceEndpoint
	// serviceAccounts are the SPIFFE identities the service's workloads
	// may present, checked under Istio mTLS (secure naming,
	// https://istio.io/latest/docs/concepts/security/#secure-naming).
	serviceAccounts []string
}

type servicePort struct {
	name     string
	number   uint32
	protocol string
	target   uint32
}

type serviceEndpoint struct {
	address  string
	ports    map[string]uint32
	labels   map[string]string
	weight   uint32
	locality string
	// network is a WorkloadEntry's network; a pod's is its
	// topology.istio.io/network label.
	network string
	source  istio.Key
}

// endpointPort is the port an endpoint listens on for service port p:
// the endpoint's own mapping by port name, else the target port, else
// the service port.
func (e serviceEndpoint) endpointPort(p servicePort) uint32 {
	if n, ok := e.ports[p.name]; ok && n != 0 {
		return n
	}
	if p.target != 0 {
		return p.target
	}
	return p.number
}

// registry indexes services by hostname.
type registry struct {
	byHost map[string][]*service
	all    []*service
}

// lookup returns the service for hostname, preferring the one in
// namespace as istiod does for a VirtualService's destinations.
func (r *registry) lookup(hostname, namespace string) *service {
	svcs := r.byHost[hostname]
	for _, s := range svcs {
		if s.namespace == namespace {
			return s
		}
	}
	if len(svcs) > 0 {
		return svcs[0]
	}
	return nil
}

func (t *translator) buildRegistry() *registry {
	r := &registry{byHost: map[string][]*service{}}
	for _, ks := range t.cfg.Services {
		if ks == nil {
			continue
		}
		s := &service{
			hostname:  ks.Hostname,
			namespace: ks.Namespace,
			source:    istio.Key{Kind: "Service", Namespace: ks.Namespace, Name: ks.Name},
		}
		if s.hostname == "" {
			s.hostname = t.fqdn(ks.Name, ks.Namespace)
		}
		for _, p := range ks.Ports {
			s.ports = append(s.ports, servicePort{name: p.Name, number: p.Port, protocol: strings.ToUpper(p.Protocol), target: p.TargetPort})
		}
		for _, e := range ks.Endpoints {
			// istiod leaves endpoints that are not ready out of EDS unless
			// the service asks for them; Waygate does the same.
			if !e.Ready {
				continue
			}
			s.endpoints = append(s.endpoints, serviceEndpoint{
				address: e.Address, ports: e.Ports, labels: e.Labels, weight: 1, locality: e.Locality, source: s.source,
			})
		}
		r.add(s)
	}
	for _, se := range t.cfg.ServiceEntries {
		if se == nil || !exportedTo(se.Spec.ExportTo, se.Namespace, t.proxy.Namespace) {
			continue
		}
		for _, s := range t.serviceEntryServices(se.Namespace, se.Name, &se.Spec) {
			r.add(s)
		}
	}
	for h := range r.byHost {
		slices.SortStableFunc(r.byHost[h], func(a, b *service) int { return cmp.Compare(a.namespace, b.namespace) })
	}
	slices.SortStableFunc(r.all, func(a, b *service) int {
		return cmp.Or(cmp.Compare(a.hostname, b.hostname), cmp.Compare(a.namespace, b.namespace))
	})
	return r
}

func (r *registry) add(s *service) {
	r.byHost[s.hostname] = append(r.byHost[s.hostname], s)
	r.all = append(r.all, s)
}

// serviceEntryServices returns one service per host of a ServiceEntry,
// with its inline endpoints and the WorkloadEntries its workloadSelector
// picks in its namespace.
func (t *translator) serviceEntryServices(namespace, name string, spec *v1alpha3.ServiceEntry) []*service {
	key := istio.Key{Kind: "ServiceEntry", Namespace: namespace, Name: name}
	var ports []servicePort
	for _, p := range spec.Ports {
		ports = append(ports, servicePort{name: p.Name, number: p.Number, protocol: strings.ToUpper(p.Protocol), target: p.TargetPort})
	}
	res := resolutionNone
	switch spec.Resolution {
	case v1alpha3.ServiceEntry_STATIC:
		res = resolutionEDS
	case v1alpha3.ServiceEntry_DNS:
		res = resolutionDNS
	case v1alpha3.ServiceEntry_DNS_ROUND_ROBIN:
		res = resolutionDNSRoundRobin
	case v1alpha3.ServiceEntry_NONE:
		res = resolutionNone
	default:
		t.warn(key, "spec.resolution", "resolution %s is not supported; using NONE", spec.Resolution)
	}

	var eps []serviceEndpoint
	for i, we := range spec.Endpoints {
		eps = append(eps, workloadEndpoint(we, key))
		if we.Address == "" {
			t.warn(key, "spec.endpoints["+strconv.Itoa(i)+"].address", "endpoint has no address; it is left out")
			eps = eps[:len(eps)-1]
		}
	}
	if sel := spec.GetWorkloadSelector().GetLabels(); len(sel) > 0 {
		for _, we := range t.cfg.WorkloadEntries {
			if we == nil || we.Namespace != namespace || !labelsSubset(sel, we.Spec.Labels) {
				continue
			}
			eps = append(eps, workloadEndpoint(&we.Spec, istio.Key{Kind: "WorkloadEntry", Namespace: we.Namespace, Name: we.Name}))
		}
	}

	// istiod's secure naming for a ServiceEntry: its subjectAltNames,
	// then the service account of each workload endpoint.
	accounts := slices.Clone(spec.SubjectAltNames)
	for _, we := range spec.Endpoints {
		if we.ServiceAccount != "" {
			accounts = append(accounts, t.spiffeID(namespace, we.ServiceAccount))
		}
	}
	if sel := spec.GetWorkloadSelector().GetLabels(); len(sel) > 0 {
		for _, we := range t.cfg.WorkloadEntries {
			if we != nil && we.Namespace == namespace && labelsSubset(sel, we.Spec.Labels) && we.Spec.ServiceAccount != "" {
				accounts = append(accounts, t.spiffeID(namespace, we.Spec.ServiceAccount))
			}
		}
	}
	slices.Sort(accounts)
	accounts = slices.Compact(accounts)

	var out []*service
	for _, h := range spec.Hosts {
		s := &service{
			hostname:   t.fqdn(h, namespace),
			namespace:  namespace,
			source:     key,
			ports:      ports,
			resolution: res,
			external:   spec.Location == v1alpha3.ServiceEntry_MESH_EXTERNAL,
			endpoints:  eps,

			serviceAccounts: accounts,
		}
		if res == resolutionDNS || res == resolutionDNSRoundRobin {
			if len(eps) == 0 {
				// A DNS ServiceEntry without endpoints resolves its own
				// host name.
				s.endpoints = []serviceEndpoint{{address: h, weight: 1, source: key}}
			}
		}
		out = append(out, s)
	}
	return out
}

func workloadEndpoint(we *v1alpha3.WorkloadEntry, key istio.Key) serviceEndpoint {
	w := we.Weight
	if w == 0 {
		w = 1
	}
	return serviceEndpoint{
		address: we.Address, ports: we.Ports, labels: we.Labels, weight: w, locality: we.Locality, network: we.Network, source: key,
	}
}

// labelsSubset reports whether every label of sel is in labels.
func labelsSubset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
