package filters

import (
	"context"
	"net"
)

// Dialer is implemented by an Env.Upstream that can open a raw
// connection to an endpoint of a cluster, for filters that speak their
// own protocol to a service (gRPC to a rate limit or ext_authz service,
// as Envoy's envoy_grpc cluster_name does). Filters find it by type
// assertion, since an Upstream in a test may not offer it.
type Dialer interface {
	// Dial connects to one endpoint of cluster, picked by the cluster's
	// load balancer, in the snapshot current at call time.
	Dial(ctx context.Context, cluster string) (net.Conn, error)
}
