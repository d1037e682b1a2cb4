package client

import (
	"log/slog"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Options configures a Client.
type Options struct {
	// Address is host:port of the xDS server.
	Address string
	// Node identifies this proxy to the server; see NewNode for the shape
	// istiod expects from an ingress gateway.
	Node *corev3.Node
	// Delta selects the incremental protocol (DeltaAggregatedResources)
	// instead of State of the World (StreamAggregatedResources).
	Delta bool
	// DialOptions replace the default, which is insecure transport
	// credentials (istiod's plaintext port 15010, or a loopback control
	// plane).
	DialOptions []grpc.DialOption
	// BackoffInitial and BackoffMax bound the jittered exponential wait
	// between reconnects and between repeated NACKs of the same version.
	// Zero means DefaultBackoffInitial and DefaultBackoffMax.
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// Log receives connection and ACK/NACK events; nil discards them.
	Log *slog.Logger
}

// maxRecvMsgSize lifts gRPC's 4 MiB default: istiod sends a mesh's whole
// CDS or EDS in one message, which passes that size in large meshes.
const maxRecvMsgSize = 256 << 20

func (o Options) dialOptions() []grpc.DialOption {
	opts := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize))}
	if len(o.DialOptions) == 0 {
		return append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	return append(opts, o.DialOptions...)
}

func (o Options) backoff() backoff {
	b := backoff{initial: o.BackoffInitial, max: o.BackoffMax}
	if b.initial <= 0 {
		b.initial = DefaultBackoffInitial
	}
	if b.max <= 0 {
		b.max = DefaultBackoffMax
	}
	if b.max < b.initial {
		b.max = b.initial
	}
	return b
}
