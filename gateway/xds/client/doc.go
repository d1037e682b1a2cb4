// Package client is Waygate's xDS client: one Aggregated Discovery Service
// stream to a management server (Waygate's own control plane, istiod, or any
// go-control-plane based server) carrying Listener, RouteConfiguration,
// Cluster, ClusterLoadAssignment and Secret resources to a Handler.
//
// It speaks both variants of the protocol described in
// https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol:
// State of the World (StreamAggregatedResources) and incremental
// (DeltaAggregatedResources). Whatever the variant, the Handler always sees
// the complete current set of one type, so the data plane compiles a whole
// snapshot and never has to reason about diffs.
//
// The client owns the protocol bookkeeping the data plane must not care
// about: ACK and NACK with the right version and nonce, wildcard subscriptions
// for listeners and clusters, named subscriptions for routes, endpoints and
// secrets driven by Handler.Names, resubscription with the held names after a
// reconnect, and keeping the last accepted configuration while the server is
// unreachable ("losing the control plane never stops traffic").
package client
