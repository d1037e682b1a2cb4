// Package istio loads Istio configuration (from a directory of YAML or from
// Kubernetes), validates it, and holds it as one consistent Config value
// that the translator turns into Envoy xDS.
//
// Resources are held as the official client-go types
// (istio.io/client-go/pkg/apis/...). Resources written as v1alpha3 or
// v1beta1 are converted to v1 on load: their specs are the same protos.
//
// The pieces, in the order configuration flows through them:
//
//   - ParseDocuments decodes one file; LoadDir and LoadPaths decode a tree
//     of files and report resources defined twice.
//   - Validate makes the semantic checks of istioctl analyze.
//   - Accept drops what is invalid, keeping the last valid version of a
//     resource being edited, so the control plane serves the rest.
//   - WatchDir and WatchKubernetes are the two sources: they call back
//     with an accepted Config after every (debounced) change.
//
// Every problem is a Finding naming the file and line, the resource
// (kind namespace/name) and the field path, as `waygate validate` prints.
package istio

import (
	extensions "istio.io/client-go/pkg/apis/extensions/v1alpha1"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	security "istio.io/client-go/pkg/apis/security/v1"
)

// Config is a consistent set of Istio resources and the service registry
// they refer to. A Config is immutable once built: sources build a new one
// on every change.
type Config struct {
	Gateways               []*networking.Gateway
	VirtualServices        []*networking.VirtualService
	DestinationRules       []*networking.DestinationRule
	ServiceEntries         []*networking.ServiceEntry
	WorkloadEntries        []*networking.WorkloadEntry
	AuthorizationPolicies  []*security.AuthorizationPolicy
	RequestAuthentications []*security.RequestAuthentication
	PeerAuthentications    []*security.PeerAuthentication
	WasmPlugins            []*extensions.WasmPlugin
	// EnvoyFilters patch the xDS the control plane generates
	// (translate/envoyfilter.go).
	EnvoyFilters []*networkingv1alpha3.EnvoyFilter
	// RateLimitPolicies are Waygate's own (waygate.dev) resources.
	RateLimitPolicies []*RateLimitPolicy

	// Services is the registry of services the mesh knows besides
	// ServiceEntries: Kubernetes Services with their EndpointSlices when
	// the source is Kubernetes; empty for a directory source.
	Services []*Service

	// Origins says where each resource came from, for error messages.
	Origins map[Key]Origin

	// lines finds, per resource, the line of the file a field path
	// (spec.http[0].route) is on, so that validation findings point at
	// the field rather than at the start of the document (lines.go).
	lines map[Key]*fieldLines
}

// Key names one resource: Kind is the Istio kind ("VirtualService").
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

func (k Key) String() string { return k.Kind + " " + k.Namespace + "/" + k.Name }

// Origin is where a resource was read from.
type Origin struct {
	// File is the path of the YAML file, or "" for Kubernetes.
	File string
	// Document is the 1-based index of the YAML document in the file.
	Document int
	// Line is the 1-based line the document starts at.
	Line int
}

// Service is a service of the registry: a Kubernetes Service and its
// endpoints, in the form the translator needs.
type Service struct {
	// Hostname is the FQDN, such as reviews.default.svc.cluster.local.
	Hostname  string
	Namespace string
	Name      string
	Ports     []ServicePort
	Endpoints []Endpoint
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name string
	Port uint32
	// Protocol is Istio's protocol name: HTTP, HTTP2, GRPC, TCP, TLS,
	// ...; "" when the Service does not declare it (Istio then detects
	// it from the traffic).
	Protocol string
	// TargetPort is the port endpoints listen on, when it differs.
	TargetPort uint32
}

// Endpoint is one workload instance behind a Service.
type Endpoint struct {
	Address string
	// Ports maps a service port name to the endpoint's port.
	Ports  map[string]uint32
	Labels map[string]string
	// Ready is false for endpoints that are not ready to serve.
	Ready bool
	// Locality is "region/zone/subzone", possibly empty.
	Locality string
}
