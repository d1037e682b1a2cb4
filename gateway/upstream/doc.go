// Package upstream turns Envoy Cluster and ClusterLoadAssignment resources
// into clusters the router sends requests to: endpoint sets grouped by
// priority, load balancing, connection pools, circuit breakers, outlier
// detection, active health checks and DNS resolution.
//
// Compiled clusters are immutable and belong to one snapshot. What must
// outlive a snapshot lives in the Manager, per cluster name: the hosts
// (one per address, with their HTTP/1.1 connections, active request
// count, health check and ejection state), the circuit breaker counters,
// and the health checker, outlier detector and DNS resolver that update
// them. A change in a host's health rebuilds the current cluster's pick
// table and swaps it in atomically; a pick reads one table, lock-free.
//
// The files follow the steps: cluster.go (compile, Pick, RoundTrip,
// Report), table.go (priorities, panic threshold, localities),
// balancer.go, leastrequest.go, ringhash.go, maglev.go (the lb_policy
// balancers), slowstart.go (new hosts' weights ramping up), pool.go (the
// HTTP/1.1 connection pool), breakers.go and retrybudget.go, outlier.go,
// health.go, dns.go, tls.go (transport sockets: upstream TLS and Istio
// mTLS) and proxyprotocol.go (the upstream PROXY protocol socket),
// manager.go. ORIGINAL_DST clusters are taken with no endpoints.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/cluster_manager
// and https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/load_balancing
package upstream
