package client

import (
	"context"
	"fmt"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// sotwStream is one StreamAggregatedResources stream.
type sotwStream struct {
	c      *Client
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	held   *heldNACKs
	// nonce is the last response nonce per type on this stream.
	nonce map[string]string
	// sent records the types this stream has sent a request for. A named
	// type is subscribed only once it has names: on a fresh stream an
	// empty resource_names means wildcard, not "nothing".
	sent     map[string]bool
	nodeSent bool
}

// runSotW runs one State of the World stream until it fails or ctx is done.
// got reports whether the server answered at all.
func (c *Client) runSotW(ctx context.Context, conn *grpc.ClientConn) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	c.setConnected()
	s := &sotwStream{c: c, stream: stream, held: newHeldNACKs(ctx), nonce: map[string]string{}, sent: map[string]bool{}}
	defer s.held.stop()
	for _, t := range subscriptionOrder {
		if ts := c.types[t]; ts.wildcard || len(ts.names) > 0 {
			if err := s.request(t, nil); err != nil {
				return false, err
			}
		}
	}
	return pump(ctx, cancel, stream.Recv, s.held, s.handle, s.request)
}

// handle applies one response and answers it: an ACK carrying the new
// version, or a NACK carrying the previous one and the handler's error;
// then the subscription changes the new state calls for.
func (s *sotwStream) handle(resp *discoveryv3.DiscoveryResponse) error {
	t := resp.GetTypeUrl()
	s.nonce[t] = resp.GetNonce()
	s.held.take(t)
	err := s.apply(resp)
	if err != nil {
		detail := nackDetail(err)
		if d := s.c.rejected(t, resp.GetVersionInfo(), resp.GetNonce(), err); d > 0 {
			s.held.hold(t, d, detail)
			return nil
		}
		return s.request(t, detail)
	}
	if err := s.request(t, nil); err != nil {
		return err
	}
	for _, ch := range s.c.refreshNames() {
		if !s.sent[ch.ts.url] && len(ch.ts.names) == 0 {
			continue
		}
		if err := s.request(ch.ts.url, nil); err != nil {
			return err
		}
	}
	return nil
}

func (s *sotwStream) apply(resp *discoveryv3.DiscoveryResponse) error {
	ts := s.c.types[resp.GetTypeUrl()]
	if ts == nil {
		return fmt.Errorf("unsupported resource type %q: waygate handles %v", resp.GetTypeUrl(), s.c.knownTypes())
	}
	items, err := sotwItems(resp)
	if err != nil {
		return err
	}
	return s.c.apply(ts, resp.GetVersionInfo(), resp.GetNonce(), ts.sotwCandidate(items), nil)
}

// request sends the current state of one type: the accepted version, the
// last nonce, the subscription and, for a NACK, the error. A NACK held back
// for pacing rides along, since this request answers the same nonce.
func (s *sotwStream) request(t string, detail *rpcstatus.Status) error {
	if held := s.held.take(t); detail == nil {
		detail = held
	}
	req := &discoveryv3.DiscoveryRequest{
		TypeUrl:       t,
		ResponseNonce: s.nonce[t],
		ErrorDetail:   detail,
	}
	if ts := s.c.types[t]; ts != nil {
		req.VersionInfo = ts.version
		if !ts.wildcard {
			req.ResourceNames = ts.names
		}
	}
	if !s.nodeSent {
		req.Node = s.c.opts.Node
		s.nodeSent = true
	}
	s.sent[t] = true
	return s.stream.Send(req)
}
