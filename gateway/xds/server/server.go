// Package server serves Envoy xDS v3 (ADS, state-of-the-world and delta)
// from an Istio configuration: each connected proxy gets the resources
// istiod would send it, translated for its own identity (the LABELS and
// NAMESPACE of its node metadata, as istiod reads them).
//
// It is go-control-plane's server and SnapshotCache
// (https://github.com/envoyproxy/go-control-plane) plus translation:
// snapshots are per node id, rebuilt for every known node on each Update
// and versioned by a hash of their content, so an unchanged resource
// type is not sent again.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/waygate/waygate/gateway/ca"
	"github.com/waygate/waygate/gateway/istio"
	"github.com/waygate/waygate/gateway/istio/translate"
)

// Server is an xDS server whose resources come from an Istio
// configuration. Its zero value is not usable; call New.
type Server struct {
	// AccessLogFile is the mesh-wide access log setting handed to the
	// translator (Istio's meshConfig.accessLogFile); set it before Serve.
	AccessLogFile string
	// ExtensionProviders are meshConfig.extensionProviders, for CUSTOM
	// AuthorizationPolicies; set them before Serve.
	ExtensionProviders []*meshconfig.MeshConfig_ExtensionProvider
	// GatewayTopology is meshConfig.defaultConfig.gatewayTopology, for
	// proxies whose node metadata carries no PROXY_CONFIG topology; set
	// it before Serve.
	GatewayTopology *meshconfig.Topology
	// CA, when set, issues each proxy its workload certificate, served
	// with the mesh root as the SDS secrets "default" and "ROOTCA"
	// (secrets.go); set it before Serve.
	CA *ca.Workloads

	log   *slog.Logger
	cache cachev3.SnapshotCache
	xds   serverv3.Server

	mu  sync.Mutex
	cfg *istio.Config
	// nodes are the proxies with an open stream, by node id.
	nodes map[string]*node
	// streams maps an open stream to its node id, once known.
	streams map[int64]string
	// renewKick wakes the certificate renewal loop.
	renewKick chan struct{}
}

// node is a connected proxy: its identity and how many streams it holds.
type node struct {
	proxy   translate.Proxy
	streams int
	// pushed is set once a snapshot was translated for proxy.
	pushed bool
}

// New returns a Server with an empty configuration; proxies that connect
// before the first Update get empty snapshots.
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		log:     log,
		cfg:     &istio.Config{},
		nodes:   map[string]*node{},
		streams: map[int64]string{},

		renewKick: make(chan struct{}, 1),
	}
	s.cache = cachev3.NewSnapshotCache(true, cachev3.IDHash{}, cacheLogger{log})
	s.xds = serverv3.NewServer(context.Background(), s.cache, s.callbacks())
	return s
}

// Update sets a new Istio configuration and pushes a snapshot translated
// for each connected proxy; proxies connecting later get theirs when
// their first request arrives.
func (s *Server) Update(cfg *istio.Config) {
	if cfg == nil {
		cfg = &istio.Config{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
	logged := map[string]bool{}
	for id, n := range s.nodes {
		s.push(id, n.proxy, logged)
	}
}

// Register registers ADS and the per-type discovery services on g.
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, s.xds)
	secretservice.RegisterSecretDiscoveryServiceServer(g, s.xds)
}

// Serve serves xDS on lis until ctx is done, then stops gracefully and
// returns nil; it returns the error that stopped serving otherwise.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	g := grpc.NewServer()
	s.Register(g)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			g.GracefulStop()
		case <-stopped:
		}
	}()
	if s.CA != nil {
		go s.renew(ctx)
	}
	s.log.Info("serving xDS", "address", lis.Addr().String())
	err := g.Serve(lis)
	close(stopped)
	if ctx.Err() != nil || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("xds server: %w", err)
}
