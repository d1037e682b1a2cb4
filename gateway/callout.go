package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/waygate/waygate/gateway/upstream"
)

// clusterCaller lets filters call clusters of the current snapshot
// (remote JWKS, ext_authz, rate limit services).
type clusterCaller struct{ g *Gateway }

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
