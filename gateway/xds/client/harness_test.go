package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	gcplog "github.com/envoyproxy/go-control-plane/pkg/log"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	testresource "github.com/envoyproxy/go-control-plane/pkg/test/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const testNodeID = "router~10.0.0.1~gw-0.istio-system~istio-system.svc.cluster.local"

// xdsServer is a real go-control-plane ADS server on loopback, recording
// every request it receives.
type xdsServer struct {
	addr  string
	cache cachev3.SnapshotCache
	grpc  *grpc.Server

	mu    sync.Mutex
	sotw  []*discoveryv3.DiscoveryRequest
	delta []*discoveryv3.DeltaDiscoveryRequest
	// changed is closed and replaced whenever a request arrives.
	changed chan struct{}
}

// startServer serves on addr ("127.0.0.1:0" for a fresh port) until the
// test ends or stop is called.
func startServer(t *testing.T, addr string) *xdsServer {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &xdsServer{
		addr:    lis.Addr().String(),
		cache:   cachev3.NewSnapshotCache(true, cachev3.IDHash{}, gcplog.LoggerFuncs{}),
		grpc:    grpc.NewServer(),
		changed: make(chan struct{}),
	}
	cb := serverv3.CallbackFuncs{
		StreamRequestFunc: func(_ int64, r *discoveryv3.DiscoveryRequest) error {
			s.record(func() { s.sotw = append(s.sotw, proto.Clone(r).(*discoveryv3.DiscoveryRequest)) })
			return nil
		},
		StreamDeltaRequestFunc: func(_ int64, r *discoveryv3.DeltaDiscoveryRequest) error {
			s.record(func() { s.delta = append(s.delta, proto.Clone(r).(*discoveryv3.DeltaDiscoveryRequest)) })
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(s.grpc, serverv3.NewServer(ctx, s.cache, cb))
	go s.grpc.Serve(lis)
	t.Cleanup(func() {
		cancel()
		s.grpc.Stop()
	})
	return s
}

func (s *xdsServer) stop() { s.grpc.Stop() }

func (s *xdsServer) record(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *xdsServer) set(t *testing.T, snap *cachev3.Snapshot) {
	t.Helper()
	if err := s.cache.SetSnapshot(context.Background(), testNodeID, snap); err != nil {
		t.Fatal(err)
	}
}

// waitSotW waits for a SotW request matching ok and returns it.
func (s *xdsServer) waitSotW(t *testing.T, what string, ok func(*discoveryv3.DiscoveryRequest) bool) *discoveryv3.DiscoveryRequest {
	t.Helper()
	var found *discoveryv3.DiscoveryRequest
	s.wait(t, what, func() bool {
		for _, r := range s.sotw {
			if ok(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// waitDelta waits for a Delta request matching ok and returns it.
func (s *xdsServer) waitDelta(t *testing.T, what string, ok func(*discoveryv3.DeltaDiscoveryRequest) bool) *discoveryv3.DeltaDiscoveryRequest {
	t.Helper()
	var found *discoveryv3.DeltaDiscoveryRequest
	s.wait(t, what, func() bool {
		for _, r := range s.delta {
			if ok(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

func (s *xdsServer) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		done, ch := cond(), s.changed
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("server never received %s", what)
		}
	}
}

// testHandler plays the data plane: it unmarshals what it is given, may
// reject it, and derives RDS, EDS and SDS names from accepted listeners and
// clusters.
type testHandler struct {
	reject func(typeURL string, res map[string]proto.Message) error

	mu      sync.Mutex
	sets    map[string]map[string]*anypb.Any
	applies []applied
	changed chan struct{}
}

type applied struct {
	typeURL string
	names   []string
}

func newTestHandler() *testHandler {
	return &testHandler{sets: map[string]map[string]*anypb.Any{}, changed: make(chan struct{})}
}

func (h *testHandler) Apply(typeURL string, res map[string]*anypb.Any) error {
	msgs := make(map[string]proto.Message, len(res))
	for name, a := range res {
		m, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s %q: %w", typeURL, name, err)
		}
		if got := cachev3.GetResourceName(m); got != name {
			return fmt.Errorf("%s keyed %q but named %q", typeURL, name, got)
		}
		msgs[name] = m
	}
	if h.reject != nil {
		if err := h.reject(typeURL, msgs); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sets[typeURL] = res
	h.applies = append(h.applies, applied{typeURL, sortedKeys(res)})
	close(h.changed)
	h.changed = make(chan struct{})
	return nil
}

func (h *testHandler) Names(typeURL string) []string {
	if isWildcard(typeURL) {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	refs := map[string]types.ResourceWithTTL{}
	secrets := map[string]bool{}
	for _, t := range []string{resourcev3.ListenerType, resourcev3.ClusterType} {
		for name, a := range h.sets[t] {
			m, err := a.UnmarshalNew()
			if err != nil {
				continue
			}
			refs[t+"/"+name] = types.ResourceWithTTL{Resource: m}
			if l, ok := m.(*listenerv3.Listener); ok {
				for _, n := range listenerSecrets(l) {
					secrets[n] = true
				}
			}
		}
	}
	want := cachev3.GetResourceReferences(refs)
	if typeURL == resourcev3.SecretType {
		want[typeURL] = secrets
	}
	out := []string{}
	for n := range want[typeURL] {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// set returns the names the handler holds for typeURL.
func (h *testHandler) set(typeURL string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return sortedKeys(h.sets[typeURL])
}

// waitSets waits until the handler holds exactly want (type URL -> names).
func (h *testHandler) waitSets(t *testing.T, want map[string][]string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		ok := true
		for typ, names := range want {
			if !slices.Equal(sortedKeys(h.sets[typ]), names) {
				ok = false
			}
		}
		ch := h.changed
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			got := map[string][]string{}
			for typ := range want {
				got[typ] = h.set(typ)
			}
			t.Fatalf("handler holds %v, want %v", got, want)
		}
	}
}

// emptyApplies returns the applies that passed an empty set.
func (h *testHandler) emptyApplies() []applied {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []applied
	for _, a := range h.applies {
		if len(a.names) == 0 {
			out = append(out, a)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// listenerSecrets returns the SDS secret names a listener's TLS contexts use.
func listenerSecrets(l *listenerv3.Listener) []string {
	var out []string
	for _, fc := range l.GetFilterChains() {
		var tls tlsv3.DownstreamTlsContext
		if fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tls) != nil {
			continue
		}
		for _, s := range tls.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs() {
			out = append(out, s.GetName())
		}
	}
	return out
}

// config describes a snapshot: listener name -> (route, secret), plus the
// clusters and their endpoint ports.
type config struct {
	version   string
	listeners map[string][2]string // name -> {route, secret}
	routes    map[string]string    // name -> cluster
	clusters  map[string]uint32    // name -> endpoint port
	secrets   []string
}

func (c config) snapshot(t *testing.T) *cachev3.Snapshot {
	t.Helper()
	res := map[resourcev3.Type][]types.Resource{}
	port := uint32(8080)
	for _, name := range sortedKeys(c.listeners) {
		rs := c.listeners[name]
		l := testresource.MakeRouteHTTPListener(testresource.Ads, name, port, rs[0])
		port++
		if rs[1] != "" {
			tls, err := anypb.New(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: rs[1], SdsConfig: &corev3.ConfigSource{
					ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
				}}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			l.FilterChains[0].TransportSocket = &corev3.TransportSocket{
				Name:       "envoy.transport_sockets.tls",
				ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tls},
			}
		}
		res[resourcev3.ListenerType] = append(res[resourcev3.ListenerType], l)
	}
	for _, name := range sortedKeys(c.routes) {
		res[resourcev3.RouteType] = append(res[resourcev3.RouteType], testresource.MakeRouteConfig(name, c.routes[name]))
	}
	for _, name := range sortedKeys(c.clusters) {
		res[resourcev3.ClusterType] = append(res[resourcev3.ClusterType], testresource.MakeCluster(testresource.Ads, name))
		res[resourcev3.EndpointType] = append(res[resourcev3.EndpointType], testresource.MakeEndpoint(name, c.clusters[name]))
	}
	for _, name := range c.secrets {
		res[resourcev3.SecretType] = append(res[resourcev3.SecretType], testresource.MakeSecrets(name, name+"-ca")[0])
	}
	snap, err := cachev3.NewSnapshot(c.version, res)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// startClient runs a client against addr until the test ends.
func startClient(t *testing.T, addr string, delta bool, h Handler) *Client {
	t.Helper()
	return runClient(t, Options{
		Address:        addr,
		Node:           &corev3.Node{Id: testNodeID},
		Delta:          delta,
		BackoffInitial: 10 * time.Millisecond,
		BackoffMax:     100 * time.Millisecond,
		Log:            slog.New(slog.DiscardHandler),
	}, h)
}

// runClient runs a client with opts until the test ends.
func runClient(t *testing.T, opts Options, h Handler) *Client {
	t.Helper()
	c := New(opts, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	return c
}

var modes = []struct {
	name  string
	delta bool
}{{"sotw", false}, {"delta", true}}
