package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/upstream"
)

// clusterCaller lets filters call clusters of the current snapshot
// (remote JWKS, ext_authz, rate limit services).
type clusterCaller struct{ g *Gateway }

var _ filters.Dialer = clusterCaller{}

func (c clusterCaller) RoundTrip(ctx context.Context, cluster string, req *http.Request) (*http.Response, error) {
	cl := c.g.Builder.Current().Cluster(cluster)
	if cl == nil {
		return nil, fmt.Errorf("cluster %q not found", cluster)
	}
	ep, err := cl.Pick(upstream.PickContext{})
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", cluster, err)
	}
	r := req.Clone(ctx)
	r.URL.Scheme = "http"
	r.URL.Host = ep.Address
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	resp, err := cl.RoundTrip(ep, r, false)
	if err == nil {
		cl.Report(ep, resp.StatusCode, nil)
	}
	return resp, err
}

// Dial opens a TCP connection to an endpoint of cluster, for filters
// that run their own protocol over it (gRPC to a rate limit service).
func (c clusterCaller) Dial(ctx context.Context, cluster string) (net.Conn, error) {
	cl := c.g.Builder.Current().Cluster(cluster)
	if cl == nil {
		return nil, fmt.Errorf("cluster %q not found", cluster)
	}
	ep, err := cl.Pick(upstream.PickContext{})
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", cluster, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ep.Address)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", cluster, err)
	}
	return conn, nil
}

var _ filters.ClusterSet = clusterCaller{}

// HasCluster tells whether cluster is in the current snapshot, for
// filters that refuse calls to unknown clusters at once (Wasm http_call).
func (c clusterCaller) HasCluster(cluster string) bool {
	return c.g.Builder.Current().Cluster(cluster) != nil
}
