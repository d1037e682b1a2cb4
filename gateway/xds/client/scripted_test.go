package client

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	testresource "github.com/envoyproxy/go-control-plane/pkg/test/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// scriptedADS is a real gRPC ADS server whose responses the test writes by
// hand, for what go-control-plane never sends: Resource envelopes in SotW,
// TTL heartbeats, types the client did not ask for, malformed resources.
type scriptedADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	reqs       chan *discoveryv3.DiscoveryRequest
	deltaReqs  chan *discoveryv3.DeltaDiscoveryRequest
	resps      chan *discoveryv3.DiscoveryResponse
	deltaResps chan *discoveryv3.DeltaDiscoveryResponse
	addr       string
}

func startScripted(t *testing.T) *scriptedADS {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedADS{
		reqs:       make(chan *discoveryv3.DiscoveryRequest, 100),
		deltaReqs:  make(chan *discoveryv3.DeltaDiscoveryRequest, 100),
		resps:      make(chan *discoveryv3.DiscoveryResponse),
		deltaResps: make(chan *discoveryv3.DeltaDiscoveryResponse),
		addr:       lis.Addr().String(),
	}
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return s
}

func (s *scriptedADS) StreamAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			s.reqs <- r
		}
	}()
	for {
		select {
		case r := <-s.resps:
			if err := stream.Send(r); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

func (s *scriptedADS) DeltaAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			s.deltaReqs <- r
		}
	}()
	for {
		select {
		case r := <-s.deltaResps:
			if err := stream.Send(r); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

// next returns the next request of typeURL, skipping others.
func (s *scriptedADS) next(t *testing.T, typeURL string) *discoveryv3.DiscoveryRequest {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case r := <-s.reqs:
			if r.GetTypeUrl() == typeURL {
				return r
			}
		case <-timeout:
			t.Fatalf("no %s request", typeURL)
		}
	}
}

func (s *scriptedADS) nextDelta(t *testing.T, typeURL string) *discoveryv3.DeltaDiscoveryRequest {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case r := <-s.deltaReqs:
			if r.GetTypeUrl() == typeURL {
				return r
			}
		case <-timeout:
			t.Fatalf("no %s delta request", typeURL)
		}
	}
}

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wrap(t testing.TB, name string, body proto.Message) *anypb.Any {
	t.Helper()
	r := &discoveryv3.Resource{Name: name, Version: "rv"}
	if body != nil {
		r.Resource = mustAny(t, body)
	}
	return mustAny(t, r)
}

func TestSotWScripted(t *testing.T) {
	s := startScripted(t)
	h := newTestHandler()
	startClient(t, s.addr, false, h)

	// The stream starts with CDS then LDS, both wildcard; the node rides on
	// the first request only.
	cdsReq := s.next(t, cds)
	if cdsReq.GetNode().GetId() != testNodeID || len(cdsReq.GetResourceNames()) != 0 || cdsReq.GetVersionInfo() != "" {
		t.Errorf("first CDS request = %v", cdsReq)
	}
	ldsReq := s.next(t, lds)
	if ldsReq.GetNode() != nil || len(ldsReq.GetResourceNames()) != 0 {
		t.Errorf("first LDS request = %v, want wildcard without node", ldsReq)
	}

	// A listener in a Resource envelope, and one plain.
	s.resps <- &discoveryv3.DiscoveryResponse{
		TypeUrl: lds, VersionInfo: "a", Nonce: "n1",
		Resources: []*anypb.Any{
			wrap(t, "", &listenerv3.Listener{Name: "wrapped"}),
			mustAny(t, &listenerv3.Listener{Name: "plain"}),
		},
	}
	if r := s.next(t, lds); r.GetVersionInfo() != "a" || r.GetResponseNonce() != "n1" || r.GetErrorDetail() != nil {
		t.Errorf("ACK = %v", r)
	}
	h.waitSets(t, map[string][]string{lds: {"plain", "wrapped"}})

	// A TTL heartbeat for "wrapped" keeps it; "plain", absent from this
	// full-state response, goes.
	s.resps <- &discoveryv3.DiscoveryResponse{
		TypeUrl: lds, VersionInfo: "b", Nonce: "n2",
		Resources: []*anypb.Any{wrap(t, "wrapped", nil)},
	}
	if r := s.next(t, lds); r.GetVersionInfo() != "b" || r.GetResponseNonce() != "n2" {
		t.Errorf("ACK = %v", r)
	}
	h.waitSets(t, map[string][]string{lds: {"wrapped"}})

	for _, tc := range []struct {
		name string
		resp *discoveryv3.DiscoveryResponse
		want string
	}{{
		name: "type the client does not handle",
		resp: &discoveryv3.DiscoveryResponse{TypeUrl: resourcev3.RuntimeType, VersionInfo: "x", Nonce: "n3"},
		want: `unsupported resource type "` + resourcev3.RuntimeType + `"`,
	}, {
		name: "resource of another type",
		resp: &discoveryv3.DiscoveryResponse{TypeUrl: lds, VersionInfo: "c", Nonce: "n4",
			Resources: []*anypb.Any{mustAny(t, &corev3.Node{Id: "x"})}},
		want: "resources[0]: resource of type type.googleapis.com/envoy.config.core.v3.Node in a response for " + lds,
	}, {
		name: "duplicate names",
		resp: &discoveryv3.DiscoveryResponse{TypeUrl: lds, VersionInfo: "d", Nonce: "n5",
			Resources: []*anypb.Any{mustAny(t, &listenerv3.Listener{Name: "x"}), mustAny(t, &listenerv3.Listener{Name: "x"})}},
		want: `resources[1]: duplicate resource name "x"`,
	}} {
		s.resps <- tc.resp
		r := s.next(t, tc.resp.GetTypeUrl())
		if r.GetErrorDetail() == nil || !strings.Contains(r.GetErrorDetail().GetMessage(), tc.want) {
			t.Errorf("%s: NACK detail = %v, want it to contain %q", tc.name, r.GetErrorDetail(), tc.want)
		}
		if r.GetResponseNonce() != tc.resp.GetNonce() {
			t.Errorf("%s: NACK nonce = %q, want %q", tc.name, r.GetResponseNonce(), tc.resp.GetNonce())
		}
		if tc.resp.GetTypeUrl() == lds && r.GetVersionInfo() != "b" {
			t.Errorf("%s: NACK version = %q, want the accepted b", tc.name, r.GetVersionInfo())
		}
	}
	if got := h.set(lds); len(got) != 1 || got[0] != "wrapped" {
		t.Errorf("after NACKs the handler holds %q", got)
	}
}

func TestDeltaScripted(t *testing.T) {
	s := startScripted(t)
	h := newTestHandler()
	startClient(t, s.addr, true, h)

	if r := s.nextDelta(t, cds); r.GetNode().GetId() != testNodeID || len(r.GetResourceNamesSubscribe()) != 0 {
		t.Errorf("first CDS request = %v", r)
	}
	s.nextDelta(t, lds)

	s.deltaResps <- &discoveryv3.DeltaDiscoveryResponse{
		TypeUrl: lds, SystemVersionInfo: "a", Nonce: "n1",
		Resources: []*discoveryv3.Resource{
			{Name: "l1", Version: "1", Resource: mustAny(t, &listenerv3.Listener{Name: "l1"})},
			{Name: "l2", Version: "1", Resource: mustAny(t, &listenerv3.Listener{Name: "l2"})},
		},
	}
	if r := s.nextDelta(t, lds); r.GetResponseNonce() != "n1" || r.GetErrorDetail() != nil {
		t.Errorf("ACK = %v", r)
	}
	h.waitSets(t, map[string][]string{lds: {"l1", "l2"}})

	s.deltaResps <- &discoveryv3.DeltaDiscoveryResponse{
		TypeUrl: lds, SystemVersionInfo: "b", Nonce: "n2",
		Resources:        []*discoveryv3.Resource{{Name: "l3", Version: "1", Resource: mustAny(t, &listenerv3.Listener{Name: "l3"})}},
		RemovedResources: []string{"l1"},
	}
	s.nextDelta(t, lds)
	h.waitSets(t, map[string][]string{lds: {"l2", "l3"}})

	s.deltaResps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.RuntimeType, SystemVersionInfo: "x", Nonce: "n3"}
	r := s.nextDelta(t, resourcev3.RuntimeType)
	if r.GetErrorDetail() == nil || !strings.Contains(r.GetErrorDetail().GetMessage(), "unsupported resource type") || r.GetResponseNonce() != "n3" {
		t.Errorf("NACK of an unknown type = %v", r)
	}
}

// TestRepeatedNACKIsHeld checks the pacing of NACKs for a version rejected
// again (go-control-plane resends the version it has after every NACK): the
// second NACK of version "bad" is held, and a newer response arriving
// meanwhile supersedes it, so the server sees NACK, then ACK.
func TestRepeatedNACKIsHeld(t *testing.T) {
	s := startScripted(t)
	h := newTestHandler()
	h.reject = func(typeURL string, res map[string]proto.Message) error {
		if _, bad := res["bad"]; bad {
			return errors.New("bad listener")
		}
		return nil
	}
	runClient(t, Options{
		Address:        s.addr,
		Node:           &corev3.Node{Id: testNodeID},
		BackoffInitial: 10 * time.Second, // a held NACK waits at least 5s
		BackoffMax:     10 * time.Second,
	}, h)
	s.next(t, lds)
	badResp := func(nonce string) *discoveryv3.DiscoveryResponse {
		return &discoveryv3.DiscoveryResponse{TypeUrl: lds, VersionInfo: "bad", Nonce: nonce,
			Resources: []*anypb.Any{mustAny(t, &listenerv3.Listener{Name: "bad"})}}
	}
	s.resps <- badResp("n1")
	if r := s.next(t, lds); r.GetErrorDetail() == nil || r.GetResponseNonce() != "n1" {
		t.Fatalf("first rejection not NACKed at once: %v", r)
	}
	s.resps <- badResp("n2")
	s.resps <- &discoveryv3.DiscoveryResponse{TypeUrl: lds, VersionInfo: "good", Nonce: "n3",
		Resources: []*anypb.Any{mustAny(t, &listenerv3.Listener{Name: "l1"})}}
	if r := s.next(t, lds); r.GetErrorDetail() != nil || r.GetResponseNonce() != "n3" || r.GetVersionInfo() != "good" {
		t.Fatalf("after a repeated rejection the next request is %v, want the ACK of n3", r)
	}
	h.waitSets(t, map[string][]string{lds: {"l1"}})
}

// TestUnsubscribedResourcesAreDropped checks that when listeners stop
// referencing a route the handler gets its route set without it at once,
// not at some later RDS response that may never come.
func TestUnsubscribedResourcesAreDropped(t *testing.T) {
	s := startScripted(t)
	h := newTestHandler()
	startClient(t, s.addr, false, h)
	s.next(t, lds)
	listeners := func(nonce string, routes ...string) *discoveryv3.DiscoveryResponse {
		r := &discoveryv3.DiscoveryResponse{TypeUrl: lds, VersionInfo: nonce, Nonce: nonce}
		for _, route := range routes {
			r.Resources = append(r.Resources, mustAny(t, testresource.MakeRouteHTTPListener(testresource.Ads, "l-"+route, 80, route)))
		}
		return r
	}
	s.resps <- listeners("1", "r1", "r2")
	if r := s.next(t, rds); !slices.Equal(r.GetResourceNames(), []string{"r1", "r2"}) {
		t.Fatalf("RDS request = %v", r)
	}
	s.resps <- &discoveryv3.DiscoveryResponse{TypeUrl: rds, VersionInfo: "1", Nonce: "r1", Resources: []*anypb.Any{
		mustAny(t, testresource.MakeRouteConfig("r1", "c")), mustAny(t, testresource.MakeRouteConfig("r2", "c")),
	}}
	h.waitSets(t, map[string][]string{rds: {"r1", "r2"}})

	s.resps <- listeners("2", "r1")
	h.waitSets(t, map[string][]string{lds: {"l-r1"}, rds: {"r1"}})
	for {
		r := s.next(t, rds)
		if slices.Equal(r.GetResourceNames(), []string{"r1"}) {
			if r.GetVersionInfo() != "1" {
				t.Errorf("unsubscribing request carries version %q, want the accepted 1", r.GetVersionInfo())
			}
			break
		}
	}
}
