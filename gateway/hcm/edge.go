package hcm

import (
	"net/http"
	"net/netip"
	"strings"
)

// envoyControlHeaders are the request headers that steer the gateway
// itself (timeouts, retries, stats names). A client outside the trust
// boundary must not set them: with use_remote_address, Envoy removes them
// from external requests, so that a client on the internet cannot, say,
// turn off a route's timeout with x-envoy-upstream-rq-timeout-ms: 0.
//
// See ConnectionManagerUtility::cleanInternalHeaders and
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-envoy-internal
var envoyControlHeaders = []string{
	"X-Envoy-Decorator-Operation",
	"X-Envoy-Downstream-Service-Cluster",
	"X-Envoy-Downstream-Service-Node",
	"X-Envoy-Retriable-Status-Codes",
	"X-Envoy-Retriable-Header-Names",
	"X-Envoy-Retry-On",
	"X-Envoy-Retry-Grpc-On",
	"X-Envoy-Max-Retries",
	"X-Envoy-Upstream-Alt-Stat-Name",
	"X-Envoy-Upstream-Rq-Timeout-Ms",
	"X-Envoy-Upstream-Rq-Per-Try-Timeout-Ms",
	"X-Envoy-Upstream-Rq-Timeout-Alt-Response",
	"X-Envoy-Expected-Rq-Timeout-Ms",
	"X-Envoy-Force-Trace",
	"X-Envoy-Ip-Tags",
	"X-Envoy-Original-Url",
	"X-Envoy-Hedge-On-Per-Try-Timeout",
	"X-Envoy-Internal",
}

// isInternal reports whether a downstream address is inside the trust
// boundary: loopback and private (RFC 1918, RFC 4193) addresses, Envoy's
// classic default when internal_address_config is not set.
func isInternal(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate()
}

// markEdge records whether the request came from inside the trust
// boundary and, when it did not, removes the headers only trusted
// clients may send. It reports whether the request is external. As in
// Envoy, a request that arrived with x-forwarded-for (forwarded) is
// external whatever its address: someone before the peer sent it.
func (s *stream) markEdge(h http.Header, remote netip.Addr, forwarded bool) (external bool) {
	if !forwarded && isInternal(remote) {
		h["X-Envoy-Internal"] = s.vals.one("true")
		return false
	}
	for _, k := range envoyControlHeaders {
		delete(h, k)
	}
	return true
}

// xffClient is the client address behind hops trusted proxies: the
// hops-th address from the right of x-forwarded-for as it arrived (each
// trusted proxy appended the address it saw). ok is false when the
// header is shorter or that entry is not an IP address; Envoy then keeps
// the connection's peer.
func xffClient(values []string, hops uint32) (netip.Addr, bool) {
	var entries []string
	for _, v := range values {
		entries = append(entries, strings.Split(v, ",")...)
	}
	if uint32(len(entries)) < hops {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(strings.TrimSpace(entries[uint32(len(entries))-hops]))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
