package wasm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// grpcTarget is where a plugin's gRPC call goes, from the upstream
// argument of proxy_grpc_call and proxy_grpc_stream: a serialized
// envoy.config.core.v3.GrpcService, or, when the bytes are not one, a
// cluster name, as Envoy reads it.
type grpcTarget struct {
	cluster   string // envoy_grpc: a cluster of the current snapshot
	uri       string // google_grpc: a target dialed directly
	authority string
	tls       *tls.Config // google_grpc with ssl_credentials
	metadata  [][2]string // GrpcService.initial_metadata
	timeout   time.Duration
	// byName is set when the upstream was a bare cluster name, which
	// Envoy checks against its clusters at once.
	byName bool
}

func parseGRPCTarget(b []byte) (grpcTarget, error) {
	var gs corev3.GrpcService
	if len(b) == 0 {
		return grpcTarget{}, errors.New("empty upstream")
	}
	if err := proto.Unmarshal(b, &gs); err != nil || gs.GetTargetSpecifier() == nil {
		return grpcTarget{cluster: string(b), authority: string(b), byName: true}, nil
	}
	t := grpcTarget{timeout: gs.GetTimeout().AsDuration()}
	for _, h := range gs.GetInitialMetadata() {
		t.metadata = append(t.metadata, [2]string{h.GetKey(), h.GetValue()})
	}
	switch {
	case gs.GetEnvoyGrpc() != nil:
		eg := gs.GetEnvoyGrpc()
		t.cluster, t.authority = eg.GetClusterName(), eg.GetAuthority()
		if t.cluster == "" {
			return grpcTarget{}, errors.New("envoy_grpc.cluster_name: is required")
		}
		if t.authority == "" {
			t.authority = t.cluster
		}
	default:
		gg := gs.GetGoogleGrpc()
		t.uri = gg.GetTargetUri()
		if t.uri == "" {
			return grpcTarget{}, errors.New("google_grpc.target_uri: is required")
		}
		if ssl := gg.GetChannelCredentials().GetSslCredentials(); ssl != nil {
			t.tls = &tls.Config{MinVersion: tls.VersionTLS12}
			if roots := dataSourceBytes(ssl.GetRootCerts()); len(roots) > 0 {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(roots) {
					return grpcTarget{}, errors.New("google_grpc.channel_credentials.ssl_credentials.root_certs: no PEM certificate")
				}
				t.tls.RootCAs = pool
			}
		}
	}
	return t, nil
}

// dataSourceBytes is an inline DataSource's bytes; a file is not read
// from a plugin's call.
func dataSourceBytes(ds *corev3.DataSource) []byte {
	switch {
	case ds.GetInlineBytes() != nil:
		return ds.GetInlineBytes()
	case ds.GetInlineString() != "":
		return []byte(ds.GetInlineString())
	}
	return nil
}

// grpcConns are a pool's gRPC connections, one per target, opened on
// first use and kept until the pool stops: gRPC multiplexes the calls of
// every instance over them and reconnects by itself.
type grpcConns struct {
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// conn returns the connection to t. An envoy_grpc cluster is dialed
// through the gateway (filters.Dialer), which picks an endpoint of the
// snapshot current at each (re)connection.
func (g *grpcConns) conn(t grpcTarget, up filters.Upstream) (*grpc.ClientConn, error) {
	key := "cluster\x00" + t.cluster + "\x00" + t.authority
	if t.uri != "" {
		key = fmt.Sprintf("uri\x00%s\x00%t", t.uri, t.tls != nil)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errClosed
	}
	if c := g.conns[key]; c != nil {
		return c, nil
	}
	var c *grpc.ClientConn
	var err error
	if t.uri != "" {
		creds := insecure.NewCredentials()
		if t.tls != nil {
			creds = credentials.NewTLS(t.tls)
		}
		c, err = grpc.NewClient(t.uri, grpc.WithTransportCredentials(creds))
	} else {
		d, ok := up.(filters.Dialer)
		if !ok {
			return nil, errors.New("the gateway cannot dial clusters")
		}
		cluster := t.cluster
		c, err = grpc.NewClient("passthrough:///"+cluster,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithAuthority(t.authority),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return d.Dial(ctx, cluster)
			}))
	}
	if err != nil {
		return nil, err
	}
	if g.conns == nil {
		g.conns = map[string]*grpc.ClientConn{}
	}
	g.conns[key] = c
	return c, nil
}

func (g *grpcConns) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// rawCodec passes gRPC messages through as the bytes the plugin
// serialized: the host never sees their schema.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}
