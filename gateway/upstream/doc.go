// Package upstream turns Envoy Cluster and ClusterLoadAssignment resources
// into clusters the router sends requests to: endpoint sets, load
// balancing, and connection pools.
//
// Compiled clusters are immutable and belong to one snapshot. What must
// outlive a snapshot — connection pools with their keep-alive connections —
// lives in the Manager, keyed by cluster name and protocol settings, so an
// EDS push that only moves endpoints keeps every warm connection.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/cluster_manager
package upstream
