// Package accesslog writes Envoy-format access logs: the same format
// strings, command operators, JSON dictionaries, filters and logger
// configs (envoy.config.accesslog.v3.AccessLog) that Istio's Telemetry API
// and meshConfig.accessLogFormat produce, so that a log line from Waygate
// parses with the tools written for Envoy's.
//
// A format is compiled once, when the listener's config compiles, into
// literal and operator segments (see
// https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage);
// formatting appends to a caller's buffer without re-parsing anything.
//
// Metadata prints from the exchange's dynamic metadata
// (%DYNAMIC_METADATA%, %METADATA(DYNAMIC:...)%) and from the static
// metadata of the resources it went through (%METADATA(ROUTE|
// VIRTUAL_HOST|LISTENER|CLUSTER|UPSTREAM_HOST:...)%, %CLUSTER_METADATA%,
// %UPSTREAM_METADATA%), where istiod records the VirtualService and the
// service behind each route and cluster.
//
// Operators whose data the gateway does not track yet
// (%UPSTREAM_LOCAL_ADDRESS%, %REQUEST_DURATION%, %RESPONSE_DURATION%,
// %CONNECTION_TERMINATION_DETAILS%, %UPSTREAM_TRANSPORT_FAILURE_REASON%)
// are accepted and print "-", as Envoy prints them when it has no value,
// so Istio's default format compiles unchanged.
package accesslog
