// Package snapshot compiles accepted xDS resources into the immutable
// Snapshot the data plane serves from, and swaps it atomically. Builder
// is the xDS client's Handler: what it cannot compile it NACKs, and the
// last good snapshot keeps serving.
package snapshot

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
	"google.golang.org/protobuf/types/known/anypb"
)

// Snapshot is one consistent, immutable configuration. A request reads
// the current Snapshot once and finishes on it.
type Snapshot struct {
	Listeners map[string]*listener.Listener
	Routes    map[string]*router.Table
	Clusters  map[string]*upstream.Cluster
	Secrets   map[string]*tlsv3.Secret
	// Extensions are the filter configs received over ECDS, by name;
	// filters whose config_discovery names one run it.
	Extensions map[string]*corev3.TypedExtensionConfig
	// Warming lists listeners waiting for SDS secrets, RDS route
	// configurations or ECDS extension configs, with the reason.
	Warming map[string]string
	// Pending are compiled listeners waiting for their route
	// configurations; they start serving when the routes arrive, as an
	// Envoy listener warms until its RDS is fetched.
	Pending map[string]*listener.Listener

	// Resources are the accepted resources by type URL and name, as
	// received, for config dumps.
	Resources map[string]map[string]*anypb.Any
	// Versions are the accepted version_info by type URL.
	Versions map[string]string
}

// RouteTable returns the route configuration named name, or nil.
func (s *Snapshot) RouteTable(name string) *router.Table {
	if s == nil {
		return nil
	}
	return s.Routes[name]
}

// Cluster returns the cluster named name, or nil.
func (s *Snapshot) Cluster(name string) *upstream.Cluster {
	if s == nil {
		return nil
	}
	return s.Clusters[name]
}

// Secret returns the SDS secret named name, or nil.
func (s *Snapshot) Secret(name string) *tlsv3.Secret {
	if s == nil {
		return nil
	}
	return s.Secrets[name]
}

// clone returns a shallow copy whose maps may be replaced one by one.
func (s *Snapshot) clone() *Snapshot {
	n := *s
	n.Resources = make(map[string]map[string]*anypb.Any, len(s.Resources))
	for k, v := range s.Resources {
		n.Resources[k] = v
	}
	n.Versions = make(map[string]string, len(s.Versions))
	for k, v := range s.Versions {
		n.Versions[k] = v
	}
	return &n
}

func empty() *Snapshot {
	return &Snapshot{
		Listeners:  map[string]*listener.Listener{},
		Routes:     map[string]*router.Table{},
		Clusters:   map[string]*upstream.Cluster{},
		Secrets:    map[string]*tlsv3.Secret{},
		Extensions: map[string]*corev3.TypedExtensionConfig{},
		Warming:    map[string]string{},
		Pending:    map[string]*listener.Listener{},
		Resources:  map[string]map[string]*anypb.Any{},
		Versions:   map[string]string{},
	}
}
