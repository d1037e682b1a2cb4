package translate

import (
	"math"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/proxy_protocol/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/api/networking/v1alpha3"
)

const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// applyTrafficPolicy applies a DestinationRule traffic policy (already
// merged for the port and subset) to a cluster, as istiod's
// applyTrafficPolicy: connection pool and circuit breakers (always, with
// istiod's unlimited defaults), outlier detection, load balancer and
// upstream TLS.
func (t *translator) applyTrafficPolicy(c *clusterv3.Cluster, svc *service, port servicePort, subset string,
	policy *v1alpha3.TrafficPolicy, dr *destinationRule,
) {
	var opts *httpv3.HttpProtocolOptions
	h := policy.GetConnectionPool().GetHttp()
	// http2KeepAlive: PINGs on idle HTTP/2 connections.
	h2 := func() *corev3.Http2ProtocolOptions {
		o := &corev3.Http2ProtocolOptions{}
		if ka := h.GetHttp2KeepAlive(); ka != nil {
			o.ConnectionKeepalive = &corev3.KeepaliveSettings{Interval: ka.GetInterval(), Timeout: ka.GetTimeout()}
		}
		return o
	}
	switch {
	case h.GetUseClientProtocol():
		// The upstream request keeps the downstream's protocol.
		opts = &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{
			UseDownstreamProtocolConfig: &httpv3.HttpProtocolOptions_UseDownstreamHttpConfig{
				HttpProtocolOptions:  &corev3.Http1ProtocolOptions{},
				Http2ProtocolOptions: h2(),
			},
		}}
	case isHTTP2(port.protocol),
		// h2UpgradePolicy UPGRADE speaks HTTP/2 whatever the port's
		// protocol, as istiod's shouldH2Upgrade: asking for it says
		// the port speaks HTTP.
		h.GetH2UpgradePolicy() == v1alpha3.ConnectionPoolSettings_HTTPSettings_UPGRADE:
		opts = &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: h2()},
			},
		}}
	}
	opts = applyConnectionPool(c, policy.GetConnectionPool(), opts)
	applyRetryBudget(c, policy.GetRetryBudget())
	if opts != nil {
		if opts.UpstreamProtocolOptions == nil {
			// Envoy requires the upstream protocol to be chosen.
			opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
				},
			}
		}
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsKey: mustAny(opts)}
	}
	applyOutlierDetection(c, policy.GetOutlierDetection())
	applyLoadBalancer(c, policy.GetLoadBalancer())
	t.applyUpstreamTLS(c, svc, port, subset, policy.GetTls(), dr)
	applyProxyProtocol(c, policy.GetProxyProtocol())
}

// applyProxyProtocol wraps the cluster's transport sockets (plain text
// when it has none) in the upstream PROXY protocol socket, as istiod's
// applyUpstreamProxyProtocol for trafficPolicy.proxyProtocol
// (https://istio.io/latest/docs/reference/config/networking/destination-rule/#TrafficPolicy-ProxyProtocol).
func applyProxyProtocol(c *clusterv3.Cluster, pp *v1alpha3.TrafficPolicy_ProxyProtocol) {
	if pp == nil {
		return
	}
	version := corev3.ProxyProtocolConfig_V1
	if pp.GetVersion() == v1alpha3.TrafficPolicy_ProxyProtocol_V2 {
		version = corev3.ProxyProtocolConfig_V2
	}
	wrap := func(inner *corev3.TransportSocket) *corev3.TransportSocket {
		if inner == nil {
			inner = &corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer",
				ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&rawbufferv3.RawBuffer{})}}
		}
		return &corev3.TransportSocket{Name: "envoy.transport_sockets.upstream_proxy_protocol",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&proxyprotocolv3.ProxyProtocolUpstreamTransport{
				Config:          &corev3.ProxyProtocolConfig{Version: version},
				TransportSocket: inner,
			})}}
	}
	if c.TransportSocket != nil || len(c.TransportSocketMatches) == 0 {
		c.TransportSocket = wrap(c.TransportSocket)
	}
	for _, m := range c.TransportSocketMatches {
		m.TransportSocket = wrap(m.TransportSocket)
	}
}

func isHTTP2(protocol string) bool {
	switch protocol {
	case "HTTP2", "GRPC", "GRPC-WEB":
		return true
	}
	return false
}

// applyConnectionPool sets circuit breakers and connection options from
// ConnectionPoolSettings
// (https://istio.io/latest/docs/reference/config/networking/destination-rule/#ConnectionPoolSettings):
// tcp.maxConnections → max_connections, http.http1MaxPendingRequests →
// max_pending_requests, http.http2MaxRequests → max_requests,
// http.maxRetries → max_retries, each unlimited (2^32-1) by default as
// istiod sets them; maxRequestsPerConnection, idleTimeout and
// tcp.maxConnectionDuration go to the HTTP protocol options.
func applyConnectionPool(c *clusterv3.Cluster, cp *v1alpha3.ConnectionPoolSettings, opts *httpv3.HttpProtocolOptions) *httpv3.HttpProtocolOptions {
	th := &clusterv3.CircuitBreakers_Thresholds{
		MaxConnections:     wrapperspb.UInt32(math.MaxUint32),
		MaxPendingRequests: wrapperspb.UInt32(math.MaxUint32),
		MaxRequests:        wrapperspb.UInt32(math.MaxUint32),
		MaxRetries:         wrapperspb.UInt32(math.MaxUint32),
	}
	c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{th}}
	if cp == nil {
		return opts
	}
	var idle, maxDuration *durationpb.Duration
	var perConn uint32
	if h := cp.Http; h != nil {
		if h.Http2MaxRequests > 0 {
			th.MaxRequests = wrapperspb.UInt32(uint32(h.Http2MaxRequests))
		}
		if h.Http1MaxPendingRequests > 0 {
			th.MaxPendingRequests = wrapperspb.UInt32(uint32(h.Http1MaxPendingRequests))
		}
		if h.MaxRetries > 0 {
			th.MaxRetries = wrapperspb.UInt32(uint32(h.MaxRetries))
		}
		idle = h.IdleTimeout
		perConn = uint32(h.MaxRequestsPerConnection)
	}
	if tcp := cp.Tcp; tcp != nil {
		if tcp.ConnectTimeout != nil {
			c.ConnectTimeout = tcp.ConnectTimeout
		}
		if tcp.MaxConnections > 0 {
			th.MaxConnections = wrapperspb.UInt32(uint32(tcp.MaxConnections))
		}
		if ka := tcp.TcpKeepalive; ka != nil {
			// TCP keepalive probes, their times in whole seconds.
			out := &corev3.TcpKeepalive{}
			if ka.Probes > 0 {
				out.KeepaliveProbes = wrapperspb.UInt32(ka.Probes)
			}
			if ka.Time != nil {
				out.KeepaliveTime = wrapperspb.UInt32(uint32(ka.Time.AsDuration().Seconds()))
			}
			if ka.Interval != nil {
				out.KeepaliveInterval = wrapperspb.UInt32(uint32(ka.Interval.AsDuration().Seconds()))
			}
			c.UpstreamConnectionOptions = &clusterv3.UpstreamConnectionOptions{TcpKeepalive: out}
		}
		maxDuration = tcp.MaxConnectionDuration
		if idle == nil {
			idle = tcp.IdleTimeout
		}
	}
	if idle == nil && maxDuration == nil && perConn == 0 {
		return opts
	}
	if opts == nil {
		opts = &httpv3.HttpProtocolOptions{}
	}
	common := &corev3.HttpProtocolOptions{IdleTimeout: idle, MaxConnectionDuration: maxDuration}
	if perConn > 0 {
		common.MaxRequestsPerConnection = wrapperspb.UInt32(perConn)
	}
	opts.CommonHttpProtocolOptions = common
	return opts
}

// applyRetryBudget sets the circuit breaker's retry_budget from
// trafficPolicy.retryBudget
// (https://istio.io/latest/docs/reference/config/networking/destination-rule/#TrafficPolicy-RetryBudget):
// Envoy then limits retries in flight to a share of the active and
// pending requests in place of max_retries. Fields left unset keep
// Envoy's defaults, which are the API's (20%, at least 3).
func applyRetryBudget(c *clusterv3.Cluster, rb *v1alpha3.TrafficPolicy_RetryBudget) {
	if rb == nil || len(c.GetCircuitBreakers().GetThresholds()) == 0 {
		return
	}
	out := &clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetInterval: rb.GetBudgetInterval()}
	if p := rb.GetPercent(); p != nil {
		out.BudgetPercent = &typev3.Percent{Value: p.GetValue()}
	}
	if n := rb.GetMinRetryConcurrency(); n > 0 {
		out.MinRetryConcurrency = wrapperspb.UInt32(n)
	}
	c.CircuitBreakers.Thresholds[0].RetryBudget = out
}

// applyOutlierDetection follows istiod's applyOutlierDetection
// (https://istio.io/latest/docs/reference/config/networking/destination-rule/#OutlierDetection):
// success-rate ejection off, consecutive 5xx and gateway errors enforced
// at 100% when set, minHealthPercent as the panic threshold.
func applyOutlierDetection(c *clusterv3.Cluster, od *v1alpha3.OutlierDetection) {
	if od == nil {
		return
	}
	out := &clusterv3.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(0)}
	if e := od.Consecutive_5XxErrors; e != nil {
		out.Consecutive_5Xx = wrapperspb.UInt32(e.GetValue())
		out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(enforcing(e.GetValue()))
	} else if od.ConsecutiveErrors > 0 { //nolint:staticcheck // deprecated alias still accepted.
		// The deprecated consecutiveErrors counts gateway errors.
		out.ConsecutiveGatewayFailure = wrapperspb.UInt32(uint32(od.ConsecutiveErrors)) //nolint:staticcheck
		out.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(100)
		out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(0)
	}
	if e := od.ConsecutiveGatewayErrors; e != nil {
		out.ConsecutiveGatewayFailure = wrapperspb.UInt32(e.GetValue())
		out.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(enforcing(e.GetValue()))
	}
	if v := od.GetFailurePercentageThreshold(); v != nil {
		// Failure percentage ejection, judged every interval over hosts
		// with enough requests (Envoy's minimum hosts and volume).
		out.FailurePercentageThreshold = wrapperspb.UInt32(v.GetValue())
		out.EnforcingFailurePercentage = wrapperspb.UInt32(100)
	}
	out.Interval = od.Interval
	out.BaseEjectionTime = od.BaseEjectionTime
	if od.MaxEjectionPercent > 0 {
		out.MaxEjectionPercent = wrapperspb.UInt32(uint32(od.MaxEjectionPercent))
	}
	if od.SplitExternalLocalOriginErrors {
		out.SplitExternalLocalOriginErrors = true
		if v := od.ConsecutiveLocalOriginFailures.GetValue(); v > 0 {
			out.ConsecutiveLocalOriginFailure = wrapperspb.UInt32(v)
			out.EnforcingConsecutiveLocalOriginFailure = wrapperspb.UInt32(100)
		}
		out.EnforcingLocalOriginSuccessRate = wrapperspb.UInt32(0)
	}
	c.OutlierDetection = out
	if od.MinHealthPercent >= 0 {
		c.CommonLbConfig.HealthyPanicThreshold = &typev3.Percent{Value: float64(od.MinHealthPercent)}
	}
}

func enforcing(v uint32) uint32 {
	if v > 0 {
		return 100
	}
	return 0
}

// applyLoadBalancer sets lb_policy from LoadBalancerSettings
// (https://istio.io/latest/docs/reference/config/networking/destination-rule/#LoadBalancerSettings):
// LEAST_REQUEST by default as istiod, RING_HASH or MAGLEV for
// consistentHash (the hash key itself is a route hash_policy).
func applyLoadBalancer(c *clusterv3.Cluster, lb *v1alpha3.LoadBalancerSettings) {
	c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	switch lb.GetSimple() {
	case v1alpha3.LoadBalancerSettings_RANDOM:
		c.LbPolicy = clusterv3.Cluster_RANDOM
	case v1alpha3.LoadBalancerSettings_ROUND_ROBIN:
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
	case v1alpha3.LoadBalancerSettings_PASSTHROUGH:
		c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}
		c.LoadAssignment = nil
	}
	var slow *clusterv3.Cluster_SlowStartConfig
	switch w := lb.GetWarmup(); {
	case w != nil:
		// warmup: the window, the weight it starts from and how fast it
		// ramps up; unset parts keep Envoy's defaults (10%, linear).
		slow = &clusterv3.Cluster_SlowStartConfig{SlowStartWindow: w.GetDuration()}
		if p := w.GetMinimumPercent(); p != nil {
			slow.MinWeightPercent = &typev3.Percent{Value: p.GetValue()}
		}
		if a := w.GetAggression(); a != nil {
			slow.Aggression = &corev3.RuntimeDouble{DefaultValue: a.GetValue(), RuntimeKey: "upstream.slow_start.aggression"}
		}
	case lb.GetWarmupDurationSecs() != nil: //nolint:staticcheck // deprecated but accepted.
		slow = &clusterv3.Cluster_SlowStartConfig{SlowStartWindow: lb.GetWarmupDurationSecs()} //nolint:staticcheck
	}
	if slow != nil {
		switch c.LbPolicy {
		case clusterv3.Cluster_ROUND_ROBIN:
			c.LbConfig = &clusterv3.Cluster_RoundRobinLbConfig_{RoundRobinLbConfig: &clusterv3.Cluster_RoundRobinLbConfig{SlowStartConfig: slow}}
		case clusterv3.Cluster_LEAST_REQUEST:
			c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{SlowStartConfig: slow}}
		}
	}
	ch := lb.GetConsistentHash()
	if ch == nil {
		return
	}
	switch {
	case ch.GetMaglev() != nil:
		c.LbPolicy = clusterv3.Cluster_MAGLEV
		if n := ch.GetMaglev().TableSize; n != 0 {
			c.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(n)}}
		}
	case ch.GetRingHash() != nil:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		if n := ch.GetRingHash().MinimumRingSize; n != 0 {
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{MinimumRingSize: wrapperspb.UInt64(n)}}
		}
	default:
		size := uint64(1024)
		if n := ch.MinimumRingSize; n != 0 { //nolint:staticcheck // deprecated but accepted.
			size = n
		}
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{MinimumRingSize: wrapperspb.UInt64(size)}}
	}
}

// hashPolicy is the route hash_policy for a destination whose
// DestinationRule asks for consistent hashing, the most specific setting
// winning: subset port-level, subset, rule port-level, rule.
func (t *translator) hashPolicy(d *v1alpha3.Destination, namespace string) *routev3.RouteAction_HashPolicy {
	if d == nil {
		return nil
	}
	host := t.fqdn(d.Host, namespace)
	svcNamespace := namespace
	if svc := t.registry.lookup(host, namespace); svc != nil {
		svcNamespace = svc.namespace
	}
	dr := t.rules.forHost(host, t.proxy.Namespace, svcNamespace)
	if dr == nil {
		return nil
	}
	tp := dr.spec.TrafficPolicy
	ch := tp.GetLoadBalancer().GetConsistentHash()
	port := d.GetPort().GetNumber()
	plsHash := portLevelHash(tp.GetPortLevelSettings(), port)
	var subsetHash, subsetPLSHash *v1alpha3.LoadBalancerSettings_ConsistentHashLB
	if ss := dr.subset(d.Subset); ss != nil {
		subsetHash = ss.GetTrafficPolicy().GetLoadBalancer().GetConsistentHash()
		subsetPLSHash = portLevelHash(ss.GetTrafficPolicy().GetPortLevelSettings(), port)
	}
	switch {
	case subsetPLSHash != nil:
		ch = subsetPLSHash
	case subsetHash != nil:
		ch = subsetHash
	case plsHash != nil:
		ch = plsHash
	}
	return consistentHashPolicy(ch)
}

func portLevelHash(pls []*v1alpha3.TrafficPolicy_PortTrafficPolicy, port uint32) *v1alpha3.LoadBalancerSettings_ConsistentHashLB {
	if port == 0 {
		return nil
	}
	for _, p := range pls {
		if p.GetPort().GetNumber() == port {
			return p.GetLoadBalancer().GetConsistentHash()
		}
	}
	return nil
}

func consistentHashPolicy(ch *v1alpha3.LoadBalancerSettings_ConsistentHashLB) *routev3.RouteAction_HashPolicy {
	switch k := ch.GetHashKey().(type) {
	case *v1alpha3.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: k.HttpHeaderName},
		}}
	case *v1alpha3.LoadBalancerSettings_ConsistentHashLB_HttpCookie:
		ck := &routev3.RouteAction_HashPolicy_Cookie{Name: k.HttpCookie.GetName(), Ttl: k.HttpCookie.GetTtl(), Path: k.HttpCookie.GetPath()}
		for _, a := range k.HttpCookie.GetAttributes() {
			ck.Attributes = append(ck.Attributes, &routev3.RouteAction_HashPolicy_CookieAttribute{Name: a.GetName(), Value: a.GetValue()})
		}
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{Cookie: ck}}
	case *v1alpha3.LoadBalancerSettings_ConsistentHashLB_UseSourceIp:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: k.UseSourceIp},
		}}
	case *v1alpha3.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_QueryParameter_{
			QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: k.HttpQueryParameterName},
		}}
	}
	return nil
}
