package server

import (
	"context"
	"fmt"
	"log/slog"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// callbacks learn each stream's node from its first request, before the
// cache answers it, so a proxy's snapshot exists when its watch opens.
func (s *Server) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamRequestFunc: func(id int64, req *discoverygrpc.DiscoveryRequest) error {
			s.seen(id, req.GetNode())
			return nil
		},
		StreamDeltaRequestFunc: func(id int64, req *discoverygrpc.DeltaDiscoveryRequest) error {
			s.seen(id, req.GetNode())
			return nil
		},
		FetchRequestFunc: func(_ context.Context, req *discoverygrpc.DiscoveryRequest) error {
			s.seen(-1, req.GetNode())
			return nil
		},
		StreamClosedFunc:      func(id int64, _ *corev3.Node) { s.closed(id) },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) { s.closed(id) },
	}
}

// seen records the node of stream id and translates for it when it is
// new or its identity changed. A one-shot fetch (id -1) is answered from
// a fresh translation without tracking the node.
func (s *Server) seen(id int64, n *corev3.Node) {
	if n == nil || n.GetId() == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := proxyOf(n)
	p.AccessLogFile = s.AccessLogFile
	p.ExtensionProviders = s.ExtensionProviders
	if p.GatewayTopology == nil {
		p.GatewayTopology = s.GatewayTopology
	}
	if s.CA != nil {
		p.TrustDomain = s.CA.CA.TrustDomain
	}
	if id < 0 {
		if _, tracked := s.nodes[n.GetId()]; !tracked {
			s.push(n.GetId(), p, map[string]bool{})
		}
		return
	}
	cur := s.nodes[n.GetId()]
	if cur == nil {
		cur = &node{}
		s.nodes[n.GetId()] = cur
	}
	if _, known := s.streams[id]; !known {
		s.streams[id] = n.GetId()
		cur.streams++
	}
	if cur.pushed && sameProxy(cur.proxy, p) {
		return
	}
	cur.proxy, cur.pushed = p, true
	s.log.Info("proxy connected", "node", n.GetId(), "namespace", p.Namespace, "labels", fmt.Sprint(p.Labels))
	s.push(n.GetId(), p, map[string]bool{})
}

// closed forgets a stream, and the node's snapshot with its last stream.
func (s *Server) closed(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodeID, ok := s.streams[id]
	if !ok {
		return
	}
	delete(s.streams, id)
	n := s.nodes[nodeID]
	if n == nil {
		return
	}
	n.streams--
	if n.streams <= 0 {
		delete(s.nodes, nodeID)
		s.cache.ClearSnapshot(nodeID)
		s.log.Info("proxy disconnected", "node", nodeID)
	}
}

// cacheLogger routes go-control-plane's logs to slog.
type cacheLogger struct{ log *slog.Logger }

func (l cacheLogger) Debugf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l cacheLogger) Infof(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l cacheLogger) Warnf(format string, args ...any)  { l.log.Warn(fmt.Sprintf(format, args...)) }
func (l cacheLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }
