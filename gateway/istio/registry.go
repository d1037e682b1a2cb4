package istio

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// buildServices turns Kubernetes Services, their EndpointSlices and the
// Pods behind them into the registry the translator reads. Endpoints
// carry their Pod's labels so that DestinationRule subsets (version: v1)
// can select them, as Istio does. podLabels finds a Pod's labels by
// namespace and name; it may return nil for a Pod not (yet) known.
func buildServices(services []*corev1.Service, slices []*discoveryv1.EndpointSlice, podLabels func(namespace, name string) map[string]string) []*Service {
	byService := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range slices {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		byService[s.Namespace+"/"+name] = append(byService[s.Namespace+"/"+name], s)
	}
	out := make([]*Service, 0, len(services))
	for _, svc := range services {
		s := &Service{
			Hostname:  svc.Name + "." + svc.Namespace + "." + DomainSuffix,
			Namespace: svc.Namespace,
			Name:      svc.Name,
		}
		for _, p := range svc.Spec.Ports {
			sp := ServicePort{Name: p.Name, Port: uint32(p.Port), Protocol: portProtocol(p)}
			if p.TargetPort.IntValue() > 0 {
				sp.TargetPort = uint32(p.TargetPort.IntValue())
			}
			s.Ports = append(s.Ports, sp)
		}
		slices := byService[svc.Namespace+"/"+svc.Name]
		sort.Slice(slices, func(i, j int) bool { return slices[i].Name < slices[j].Name })
		for _, slice := range slices {
			s.Endpoints = append(s.Endpoints, sliceEndpoints(slice, podLabels)...)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hostname < out[j].Hostname })
	return out
}

func sliceEndpoints(slice *discoveryv1.EndpointSlice, podLabels func(namespace, name string) map[string]string) []Endpoint {
	ports := map[string]uint32{}
	for _, p := range slice.Ports {
		if p.Port == nil {
			continue
		}
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		ports[name] = uint32(*p.Port)
	}
	var out []Endpoint
	for _, e := range slice.Endpoints {
		var labels map[string]string
		if ref := e.TargetRef; ref != nil && ref.Kind == "Pod" {
			ns := ref.Namespace
			if ns == "" {
				ns = slice.Namespace
			}
			labels = podLabels(ns, ref.Name)
		}
		// A missing ready condition means ready, per the EndpointSlice API.
		ready := e.Conditions.Ready == nil || *e.Conditions.Ready
		locality := ""
		if e.Zone != nil && *e.Zone != "" {
			locality = "/" + *e.Zone
		}
		for _, addr := range e.Addresses {
			out = append(out, Endpoint{Address: addr, Ports: ports, Labels: labels, Ready: ready, Locality: locality})
		}
	}
	return out
}

// portProtocol is Istio's protocol selection: the appProtocol field, else
// the port name's prefix (http, http-web, grpc-api, tcp-db); "" when
// neither says, which Istio treats as "detect from the traffic".
// See https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/
func portProtocol(p corev1.ServicePort) string {
	if p.Protocol == corev1.ProtocolUDP {
		return "UDP"
	}
	if p.AppProtocol != nil {
		switch ap := strings.ToLower(*p.AppProtocol); ap {
		case "kubernetes.io/h2c":
			return "HTTP2"
		case "kubernetes.io/ws", "kubernetes.io/wss":
			return "HTTP"
		default:
			if proto := istioProtocol(ap); proto != "" {
				return proto
			}
		}
	}
	prefix, _, _ := strings.Cut(strings.ToLower(p.Name), "-")
	return istioProtocol(prefix)
}

func istioProtocol(name string) string {
	switch name {
	case "http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "mongo", "redis", "mysql":
		return strings.ToUpper(name)
	}
	return ""
}
