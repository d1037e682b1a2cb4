// Package xdsmeta finds the static metadata of the xDS resources an
// exchange went through: its listener, virtual host, route, cluster and
// upstream host. Control planes put there what filters and logs need to
// know about a resource; istiod, for one, records on each cluster the
// Istio service and DestinationRule it came from (filter_metadata
// "istio"). The Wasm host's xds.*_metadata attributes and the access
// log's %METADATA(...)% operators read it here.
//
// Each function reports ok=false when the exchange has no such resource
// (no route matched, no cluster known, no host picked yet). A resource
// without metadata gives a nil Metadata with ok=true, which reads as an
// empty one, as Envoy's default instance does.
package xdsmeta

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// Listener is the metadata of the listener that accepted the connection.
func Listener(x *filters.Exchange) (*corev3.Metadata, bool) {
	if x.Downstream.Listener == "" {
		return nil, false
	}
	return x.Downstream.ListenerMetadata, true
}

// Route is the matched route's metadata.
func Route(x *filters.Exchange) (*corev3.Metadata, bool) {
	rt, _ := router.Resolve(x.Route)
	if rt == nil {
		return nil, false
	}
	return rt.Metadata, true
}

// VirtualHost is the metadata of the matched route's virtual host.
func VirtualHost(x *filters.Exchange) (*corev3.Metadata, bool) {
	rt, _ := router.Resolve(x.Route)
	if rt == nil || rt.VHost() == nil {
		return nil, false
	}
	return rt.VHost().Config().GetMetadata(), true
}

// Cluster is the metadata of the upstream cluster: the one the router
// sent to, or before that the matched route's.
func Cluster(x *filters.Exchange) (*corev3.Metadata, bool) {
	name := x.Info.UpstreamCluster
	if name == "" && x.Route != nil {
		name = x.Route.Cluster()
	}
	if name == "" || x.Context == nil {
		return nil, false
	}
	set := upstream.SetFrom(x.Context)
	if set == nil {
		return nil, false
	}
	cl := set.Cluster(name)
	if cl == nil {
		return nil, false
	}
	return cl.Proto.GetMetadata(), true
}

// UpstreamHost is the metadata of the endpoint the router picked.
func UpstreamHost(x *filters.Exchange) (*corev3.Metadata, bool) {
	if x.Info.UpstreamHost == "" {
		return nil, false
	}
	return x.Info.UpstreamHostMetadata, true
}
