package router

import (
	"errors"
	"fmt"
	"net/textproto"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
)

// WeightedCluster is one entry of a weighted_clusters action. It is also
// a filters.Route: once the router picked it, filters see its cluster and
// its typed_per_filter_config ahead of the route's, as Envoy's
// WeightedClusterEntry does.
type WeightedCluster struct {
	route *Route
	name  string
	// ClusterHeader is the canonical request header naming the cluster,
	// when the entry sets cluster_header instead of name.
	ClusterHeader string
	Weight        uint32
	// HostRewriteLiteral replaces the authority for this cluster.
	HostRewriteLiteral string
	// MetadataMatch selects endpoint subsets, merged over the route's.
	MetadataMatch *corev3.Metadata

	reqHeaders  *headerMutation
	respHeaders *headerMutation
	perFilter   perFilter
}

var _ filters.Route = (*WeightedCluster)(nil)

// Name is the route's name.
func (w *WeightedCluster) Name() string { return w.route.name }

// VirtualHost is the route's virtual host name.
func (w *WeightedCluster) VirtualHost() string { return w.route.vhost.name }

// Cluster is the entry's cluster name ("" for a cluster_header entry; use
// ClusterFor).
func (w *WeightedCluster) Cluster() string { return w.name }

// ClusterFor resolves a cluster_header entry against the request.
func (w *WeightedCluster) ClusterFor(req *filters.Request) string {
	if w.ClusterHeader != "" {
		return req.Header.Get(w.ClusterHeader)
	}
	return w.name
}

// Route is the route the entry belongs to.
func (w *WeightedCluster) Route() *Route { return w.route }

// PerFilterConfig returns the entry's own config for the filter, else the
// route's (and so on up to the route configuration).
func (w *WeightedCluster) PerFilterConfig(name string) any {
	if v, ok := w.perFilter[name]; ok {
		return v
	}
	return w.route.PerFilterConfig(name)
}

func (f *Forward) compileWeighted(wc *routev3.WeightedCluster, r *Route) error {
	if len(wc.GetClusters()) == 0 {
		return errors.New("clusters: must not be empty")
	}
	for i, c := range wc.GetClusters() {
		path := fmt.Sprintf("clusters[%d]", i)
		w := &WeightedCluster{
			route:              r,
			name:               c.GetName(),
			Weight:             c.GetWeight().GetValue(),
			HostRewriteLiteral: c.GetHostRewriteLiteral(),
			MetadataMatch:      c.GetMetadataMatch(),
		}
		if c.GetClusterHeader() != "" {
			w.ClusterHeader = textproto.CanonicalMIMEHeaderKey(c.GetClusterHeader())
		}
		if (w.name == "") == (w.ClusterHeader == "") {
			return fmt.Errorf("%s: exactly one of name and cluster_header is required", path)
		}
		var err error
		if w.reqHeaders, err = compileHeaderMutation(c.GetRequestHeadersToAdd(), c.GetRequestHeadersToRemove(),
			path+".request_headers_to_add", path+".request_headers_to_remove"); err != nil {
			return err
		}
		if w.respHeaders, err = compileHeaderMutation(c.GetResponseHeadersToAdd(), c.GetResponseHeadersToRemove(),
			path+".response_headers_to_add", path+".response_headers_to_remove"); err != nil {
			return err
		}
		if w.perFilter, err = compilePerFilter(c.GetTypedPerFilterConfig(), path+".typed_per_filter_config"); err != nil {
			return err
		}
		f.totalWeight += uint64(w.Weight)
		f.Weighted = append(f.Weighted, w)
	}
	if f.totalWeight == 0 {
		return errors.New("clusters: the sum of weights must be greater than 0")
	}
	if tw := wc.GetTotalWeight(); tw != nil && uint64(tw.GetValue()) != f.totalWeight {
		return fmt.Errorf("total_weight: %d does not equal the sum of weights %d", tw.GetValue(), f.totalWeight)
	}
	switch s := wc.GetRandomValueSpecifier().(type) {
	case *routev3.WeightedCluster_HeaderName:
		f.weightHeader = textproto.CanonicalMIMEHeaderKey(s.HeaderName)
	case *routev3.WeightedCluster_UseHashPolicy:
		if s.UseHashPolicy.GetValue() {
			return errors.New("use_hash_policy: picking weighted clusters by hash is not supported; use header_name")
		}
	}
	return nil
}

// Pick selects a weighted cluster as Envoy does: random modulo the total
// weight falls into one entry's range, in config order. With header_name
// set, a request header holding a uint64 replaces random. Pick returns nil
// for routes without weighted clusters.
func (f *Forward) Pick(req *filters.Request, random uint64) *WeightedCluster {
	if len(f.Weighted) == 0 {
		return nil
	}
	if f.weightHeader != "" && req != nil {
		if vs := req.Header[f.weightHeader]; len(vs) > 0 {
			if v, err := strconv.ParseUint(vs[0], 10, 64); err == nil {
				random = v
			}
		}
	}
	sel := random % f.totalWeight
	var end uint64
	for _, w := range f.Weighted {
		end += uint64(w.Weight)
		if sel < end {
			return w
		}
	}
	return f.Weighted[len(f.Weighted)-1]
}
