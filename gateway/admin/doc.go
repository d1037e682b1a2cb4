// Package admin serves Envoy's admin interface
// (https://www.envoyproxy.io/docs/envoy/latest/operations/admin), by
// default on 127.0.0.1:15000, so that istioctl proxy-config, the
// Kubernetes readiness probe of an Istio gateway pod, Prometheus scrapes
// and an operator's curl work against Waygate as against Envoy.
//
// The gateway supplies what the endpoints show through Source, built from
// its current snapshot with the admin protos of go-control-plane; this
// package renders them the way Envoy does (JSON with resolved Any types,
// the "::"-separated text forms) and owns the process-level switches:
// health-check failing, draining and quitting.
package admin
