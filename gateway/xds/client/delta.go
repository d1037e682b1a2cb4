package client

import (
	"context"
	"fmt"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// deltaStream is one DeltaAggregatedResources stream.
//
// A NACK keeps the previous set, but a Delta server records what it sent,
// not what was accepted: a resource the rejected response carried and the
// next one leaves unchanged is not resent on this stream. Envoy has the same
// gap; the next stream closes it, since initial_resource_versions then
// tells the server what the client really holds.
type deltaStream struct {
	c        *Client
	stream   discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	held     *heldNACKs
	nonce    map[string]string
	sent     map[string]bool
	nodeSent bool
}

// runDelta runs one incremental stream until it fails or ctx is done.
// got reports whether the server answered at all.
func (c *Client) runDelta(ctx context.Context, conn *grpc.ClientConn) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	c.setConnected()
	s := &deltaStream{c: c, stream: stream, held: newHeldNACKs(ctx), nonce: map[string]string{}, sent: map[string]bool{}}
	defer s.held.stop()
	for _, t := range subscriptionOrder {
		if ts := c.types[t]; ts.wildcard || len(ts.names) > 0 {
			if err := s.subscribe(ts); err != nil {
				return false, err
			}
		}
	}
	return pump(ctx, cancel, stream.Recv, s.held, s.handle, s.answer)
}

// handle applies one response, answers it, then sends the subscription
// changes the new state calls for.
func (s *deltaStream) handle(resp *discoveryv3.DeltaDiscoveryResponse) error {
	t := resp.GetTypeUrl()
	s.nonce[t] = resp.GetNonce()
	s.held.take(t)
	if err := s.apply(resp); err != nil {
		detail := nackDetail(err)
		if d := s.c.rejected(t, resp.GetSystemVersionInfo(), resp.GetNonce(), err); d > 0 {
			s.held.hold(t, d, detail)
			return nil
		}
		return s.answer(t, detail)
	}
	if err := s.answer(t, nil); err != nil {
		return err
	}
	for _, ch := range s.c.refreshNames() {
		var err error
		switch {
		case !s.sent[ch.ts.url] && len(ch.ts.names) == 0:
			continue
		case !s.sent[ch.ts.url]:
			err = s.subscribe(ch.ts)
		default:
			err = s.send(&discoveryv3.DeltaDiscoveryRequest{
				TypeUrl:                  ch.ts.url,
				ResourceNamesSubscribe:   ch.added,
				ResourceNamesUnsubscribe: ch.removed,
			})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *deltaStream) apply(resp *discoveryv3.DeltaDiscoveryResponse) error {
	ts := s.c.types[resp.GetTypeUrl()]
	if ts == nil {
		return fmt.Errorf("unsupported resource type %q: waygate handles %v", resp.GetTypeUrl(), s.c.knownTypes())
	}
	items, err := deltaItems(resp)
	if err != nil {
		return err
	}
	set, vers := ts.deltaCandidate(items, resp.GetRemovedResources())
	return s.c.apply(ts, resp.GetSystemVersionInfo(), resp.GetNonce(), set, vers)
}

// subscribe sends the first request of a type on this stream: the whole
// subscription (none for wildcard) and the versions held from earlier
// streams, so the server sends only what changed while disconnected.
func (s *deltaStream) subscribe(ts *typeState) error {
	req := &discoveryv3.DeltaDiscoveryRequest{
		TypeUrl:                 ts.url,
		InitialResourceVersions: ts.initialVersions(),
	}
	if !ts.wildcard {
		req.ResourceNamesSubscribe = ts.names
	}
	return s.send(req)
}

// answer ACKs (nil detail) or NACKs the last response of a type.
func (s *deltaStream) answer(t string, detail *rpcstatus.Status) error {
	return s.send(&discoveryv3.DeltaDiscoveryRequest{
		TypeUrl:       t,
		ResponseNonce: s.nonce[t],
		ErrorDetail:   detail,
	})
}

func (s *deltaStream) send(req *discoveryv3.DeltaDiscoveryRequest) error {
	if !s.nodeSent {
		req.Node = s.c.opts.Node
		s.nodeSent = true
	}
	s.sent[req.GetTypeUrl()] = true
	return s.stream.Send(req)
}
