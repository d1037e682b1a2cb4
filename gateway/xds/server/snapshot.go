package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/gateway/istio"
	"github.com/waygate/waygate/gateway/istio/translate"
)

// snapshotFor translates cfg for proxy p into a consistent snapshot, with
// the proxy's mesh secrets (secrets.go) beside the translated ones. Each
// resource type is versioned by a hash of its content, so a type whose
// resources did not change keeps its version and is not pushed again.
func snapshotFor(cfg *istio.Config, p translate.Proxy, mesh []*tlsv3.Secret) (*cachev3.Snapshot, []translate.Warning, error) {
	res, warnings := translate.Translate(cfg, p)
	res.Secrets = append(res.Secrets, mesh...)
	byType := map[string][]types.Resource{
		resourcev3.ListenerType: {},
		resourcev3.RouteType:    {},
		resourcev3.ClusterType:  {},
		resourcev3.EndpointType: {},
		resourcev3.SecretType:   {},
		// WasmPlugins reach the gateway as istiod sends them: filters
		// with config_discovery, configured by these ECDS resources.
		resourcev3.ExtensionConfigType: {},
	}
	for _, r := range res.Listeners {
		byType[resourcev3.ListenerType] = append(byType[resourcev3.ListenerType], r)
	}
	for _, r := range res.Routes {
		byType[resourcev3.RouteType] = append(byType[resourcev3.RouteType], r)
	}
	for _, r := range res.Clusters {
		byType[resourcev3.ClusterType] = append(byType[resourcev3.ClusterType], r)
	}
	for _, r := range res.Endpoints {
		byType[resourcev3.EndpointType] = append(byType[resourcev3.EndpointType], r)
	}
	for _, r := range res.Secrets {
		byType[resourcev3.SecretType] = append(byType[resourcev3.SecretType], r)
	}
	for _, r := range res.Extensions {
		byType[resourcev3.ExtensionConfigType] = append(byType[resourcev3.ExtensionConfigType], r)
	}
	snap, err := cachev3.NewSnapshot("", byType)
	if err != nil {
		return nil, warnings, err
	}
	for typ, list := range byType {
		v, err := contentVersion(list)
		if err != nil {
			return nil, warnings, err
		}
		snap.Resources[cachev3.GetResponseType(typ)].Version = v
	}
	if err := snap.Consistent(); err != nil {
		return nil, warnings, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return snap, warnings, nil
}

// contentVersion hashes the deterministic encoding of resources, which
// the translator returns sorted by name.
func contentVersion(list []types.Resource) (string, error) {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for _, r := range list {
		b, err := opts.Marshal(r)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// push translates the current configuration for node id and sets its
// snapshot. Warnings are logged once per Update (logged records them).
// The caller holds s.mu.
func (s *Server) push(id string, p translate.Proxy, logged map[string]bool) {
	mesh, err := s.meshSecrets(p)
	if err != nil {
		s.log.Error("workload certificate not issued", "node", id, "error", err)
	}
	snap, warnings, err := snapshotFor(s.cfg, p, mesh)
	for _, w := range warnings {
		msg := w.String()
		if logged != nil && !logged[msg] {
			logged[msg] = true
			s.log.Warn("translation", "resource", w.Resource.String(), "field", w.Field, "message", w.Message)
		}
	}
	if err != nil {
		s.log.Error("snapshot not updated", "node", id, "error", err)
		return
	}
	if err := s.cache.SetSnapshot(context.Background(), id, snap); err != nil {
		s.log.Error("snapshot not set", "node", id, "error", err)
		return
	}
	s.log.Debug("snapshot set", "node", id,
		"listeners", snap.GetVersion(resourcev3.ListenerType), "clusters", snap.GetVersion(resourcev3.ClusterType))
}
