package admin

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

func wantsJSON(r *http.Request) bool { return r.URL.Query().Get("format") == "json" }

func (s *Server) clusters(w http.ResponseWriter, r *http.Request) {
	cs := s.opts.Source.Clusters()
	if cs == nil {
		cs = &adminv3.Clusters{}
	}
	if wantsJSON(r) {
		writeProto(w, cs)
		return
	}
	var b strings.Builder
	for _, c := range cs.GetClusterStatuses() {
		writeClusterText(&b, c)
	}
	text(w, http.StatusOK, b.String())
}

// Envoy's circuit breaker defaults, printed when a cluster sets none.
var defaultThresholds = &clusterv3.CircuitBreakers_Thresholds{}

// writeClusterText writes one cluster in the "::"-separated form of
// Envoy's /clusters, which scripts and istioctl's text parsers grep.
func writeClusterText(b *strings.Builder, c *adminv3.ClusterStatus) {
	name := c.GetName()
	line := func(parts ...string) {
		b.WriteString(name)
		for _, p := range parts {
			b.WriteString("::")
			b.WriteString(p)
		}
		b.WriteByte('\n')
	}
	obs := c.GetObservabilityName()
	if obs == "" {
		obs = name
	}
	line("observability_name", obs)
	if t := c.GetSuccessRateEjectionThreshold(); t != nil {
		line("outlier", "success_rate_ejection_threshold", formatFloat(t.GetValue()))
	}
	if t := c.GetLocalOriginSuccessRateEjectionThreshold(); t != nil {
		line("outlier", "local_origin_success_rate_ejection_threshold", formatFloat(t.GetValue()))
	}
	for _, p := range []struct {
		label string
		prio  corev3.RoutingPriority
	}{{"default", corev3.RoutingPriority_DEFAULT}, {"high", corev3.RoutingPriority_HIGH}} {
		th := defaultThresholds
		for _, t := range c.GetCircuitBreakers().GetThresholds() {
			if t.GetPriority() == p.prio {
				th = t
			}
		}
		line(p.label+"_priority", "max_connections", maxOr(th.GetMaxConnections().GetValue(), th.GetMaxConnections() != nil, 1024))
		line(p.label+"_priority", "max_pending_requests", maxOr(th.GetMaxPendingRequests().GetValue(), th.GetMaxPendingRequests() != nil, 1024))
		line(p.label+"_priority", "max_requests", maxOr(th.GetMaxRequests().GetValue(), th.GetMaxRequests() != nil, 1024))
		line(p.label+"_priority", "max_retries", maxOr(th.GetMaxRetries().GetValue(), th.GetMaxRetries() != nil, 3))
	}
	line("added_via_api", strconv.FormatBool(c.GetAddedViaApi()))
	if e := c.GetEdsServiceName(); e != "" {
		line("eds_service_name", e)
	}
	for _, h := range c.GetHostStatuses() {
		addr := addressString(h.GetAddress())
		st := append([]*adminv3.SimpleMetric(nil), h.GetStats()...)
		sort.Slice(st, func(i, j int) bool { return st[i].GetName() < st[j].GetName() })
		for _, m := range st {
			line(addr, m.GetName(), strconv.FormatUint(m.GetValue(), 10))
		}
		line(addr, "hostname", h.GetHostname())
		line(addr, "health_flags", healthFlags(h.GetHealthStatus()))
		line(addr, "weight", strconv.FormatUint(uint64(h.GetWeight()), 10))
		line(addr, "region", h.GetLocality().GetRegion())
		line(addr, "zone", h.GetLocality().GetZone())
		line(addr, "sub_zone", h.GetLocality().GetSubZone())
		line(addr, "canary", "false")
		line(addr, "priority", strconv.FormatUint(uint64(h.GetPriority()), 10))
		line(addr, "success_rate", percentOr(h.GetSuccessRate()))
		line(addr, "local_origin_success_rate", percentOr(h.GetLocalOriginSuccessRate()))
	}
}

func maxOr(v uint32, set bool, def uint32) string {
	if !set {
		v = def
	}
	return strconv.FormatUint(uint64(v), 10)
}

// percentOr prints a success rate, -1 when outlier detection has none,
// as Envoy does.
func percentOr(p *typev3.Percent) string {
	if p == nil {
		return "-1"
	}
	return formatFloat(p.GetValue())
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// healthFlags renders a host's health as Envoy's
// HostUtility::healthFlagsToString: "healthy", or each failing reason
// prefixed with "/".
func healthFlags(h *adminv3.HostHealthStatus) string {
	var b strings.Builder
	add := func(set bool, s string) {
		if set {
			b.WriteString("/")
			b.WriteString(s)
		}
	}
	add(h.GetFailedActiveHealthCheck(), "failed_active_hc")
	add(h.GetFailedOutlierCheck(), "failed_outlier_check")
	add(h.GetEdsHealthStatus() == corev3.HealthStatus_UNHEALTHY, "failed_eds_health")
	add(h.GetFailedActiveDegradedCheck(), "degraded_active_hc")
	add(h.GetEdsHealthStatus() == corev3.HealthStatus_DEGRADED, "degraded_eds_health")
	add(h.GetPendingDynamicRemoval(), "pending_dynamic_removal")
	add(h.GetPendingActiveHc(), "pending_active_hc")
	add(h.GetExcludedViaImmediateHcFail(), "excluded_via_immediate_hc_fail")
	add(h.GetActiveHcTimeout(), "active_hc_timeout")
	add(h.GetEdsHealthStatus() == corev3.HealthStatus_DRAINING, "eds_status_draining")
	add(h.GetFailedDegradedOutlierDetection(), "degraded_outlier_detection")
	if b.Len() == 0 {
		return "healthy"
	}
	return b.String()
}

// addressString prints an address as Envoy's Address::asString:
// "10.0.0.1:9080", "[::1]:80", or a pipe's path.
func addressString(a *corev3.Address) string {
	switch {
	case a.GetSocketAddress() != nil:
		sa := a.GetSocketAddress()
		return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
	case a.GetPipe() != nil:
		return a.GetPipe().GetPath()
	case a.GetEnvoyInternalAddress() != nil:
		return "envoy://" + a.GetEnvoyInternalAddress().GetServerListenerName() + "/" + a.GetEnvoyInternalAddress().GetEndpointId()
	}
	return ""
}

func (s *Server) listeners(w http.ResponseWriter, r *http.Request) {
	ls := s.opts.Source.Listeners()
	if ls == nil {
		ls = &adminv3.Listeners{}
	}
	if wantsJSON(r) {
		writeProto(w, ls)
		return
	}
	var b strings.Builder
	for _, l := range ls.GetListenerStatuses() {
		fmt.Fprintf(&b, "%s::%s", l.GetName(), addressString(l.GetLocalAddress()))
		for _, a := range l.GetAdditionalLocalAddresses() {
			b.WriteString(",")
			b.WriteString(addressString(a))
		}
		b.WriteByte('\n')
	}
	text(w, http.StatusOK, b.String())
}
