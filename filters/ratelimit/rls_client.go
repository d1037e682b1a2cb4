package ratelimit

import (
	"context"
	"errors"
	"net"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/waygate/waygate/filters"
)

// rlsClient is the gRPC client of a rate limit service reached through
// a cluster, as Envoy's envoy_grpc grpc_service is: every connection the
// gRPC client opens is dialed through the gateway to an endpoint the
// cluster's load balancer picks, in the snapshot current at the time.
type rlsClient struct {
	conn *grpc.ClientConn
	rls  rlsv3.RateLimitServiceClient
}

func newRLSClient(up filters.Upstream, cluster, authority string) (*rlsClient, error) {
	d, ok := up.(filters.Dialer)
	if !ok {
		return nil, errors.New("rate_limit_service: the gateway cannot dial clusters (filters.Env.Upstream is not a filters.Dialer)")
	}
	conn, err := grpc.NewClient("passthrough:///ratelimit",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(authority),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return d.Dial(ctx, cluster)
		}))
	if err != nil {
		return nil, err
	}
	return &rlsClient{conn: conn, rls: rlsv3.NewRateLimitServiceClient(conn)}, nil
}

func (c *rlsClient) Close() error { return c.conn.Close() }
