package upstream

import (
	"fmt"
	"net"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// httpOptionsKey is the typed_extension_protocol_options key under which
// Envoy (and istiod) put the upstream HTTP protocol options.
const httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// protocolOf reads the upstream protocol from the cluster, honoring the
// deprecated http2_protocol_options field as Envoy still does.
func protocolOf(c *clusterv3.Cluster) (Protocol, error) {
	opts, err := httpOptions(c)
	if err != nil {
		return HTTP1, err
	}
	if opts != nil {
		switch {
		case opts.GetExplicitHttpConfig() != nil:
			if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
				return HTTP2, nil
			}
			if opts.GetExplicitHttpConfig().GetHttp3ProtocolOptions() != nil {
				return HTTP1, fmt.Errorf("typed_extension_protocol_options[%s].explicit_http_config.http3_protocol_options: HTTP/3 upstreams are not supported", httpOptionsKey)
			}
			return HTTP1, nil
		case opts.GetUseDownstreamProtocolConfig() != nil:
			return FollowDownstream, nil
		case opts.GetAutoConfig() != nil:
			// ALPN decides on TLS; on plaintext Envoy's auto config
			// speaks HTTP/1.1.
			return HTTP1, nil
		}
	}
	//lint:ignore SA1019 deprecated in the API but still sent by older control planes.
	if c.GetHttp2ProtocolOptions() != nil { //nolint:staticcheck
		return HTTP2, nil
	}
	return HTTP1, nil
}

// httpOptions unpacks the cluster's HttpProtocolOptions, if any.
func httpOptions(c *clusterv3.Cluster) (*httpv3.HttpProtocolOptions, error) {
	a, ok := c.GetTypedExtensionProtocolOptions()[httpOptionsKey]
	if !ok {
		return nil, nil
	}
	var opts httpv3.HttpProtocolOptions
	if err := a.UnmarshalTo(&opts); err != nil {
		return nil, fmt.Errorf("typed_extension_protocol_options[%s]: %v", httpOptionsKey, err)
	}
	return &opts, nil
}

// poolSettings are the cluster settings a connection pool is built from;
// a cluster update that leaves them equal keeps the pool and its
// connections.
type poolSettings struct {
	connectTimeout time.Duration
	idleTimeout    time.Duration
	maxRequests    uint32 // per connection, 0 = unlimited
	// keepAlive is upstream_connection_options.tcp_keepalive: TCP
	// keepalive probes on the cluster's connections.
	keepAlive net.KeepAliveConfig
	// pingInterval and pingTimeout are the HTTP/2 options'
	// connection_keepalive: a PING after pingInterval without frames,
	// and the connection closed when its answer takes pingTimeout.
	pingInterval, pingTimeout time.Duration
}

// http2Options are the cluster's HTTP/2 protocol options, wherever the
// cluster puts them.
func http2Options(c *clusterv3.Cluster, opts *httpv3.HttpProtocolOptions) *corev3.Http2ProtocolOptions {
	if h := opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions(); h != nil {
		return h
	}
	if h := opts.GetUseDownstreamProtocolConfig().GetHttp2ProtocolOptions(); h != nil {
		return h
	}
	return c.GetHttp2ProtocolOptions() //nolint:staticcheck // deprecated but still sent.
}

// defaultKeepAlive probes an idle upstream connection every 30 s, as
// the gateway always did when a cluster says nothing.
var defaultKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 30 * time.Second}

// keepAliveOf reads upstream_connection_options.tcp_keepalive; a field
// it leaves unset takes the Linux default Envoy gets from the system
// (2 h idle, 75 s between probes, 9 probes).
func keepAliveOf(c *clusterv3.Cluster) net.KeepAliveConfig {
	ka := c.GetUpstreamConnectionOptions().GetTcpKeepalive()
	if ka == nil {
		return defaultKeepAlive
	}
	out := net.KeepAliveConfig{Enable: true, Idle: 2 * time.Hour, Interval: 75 * time.Second, Count: 9}
	if v := ka.GetKeepaliveTime(); v != nil {
		out.Idle = time.Duration(v.GetValue()) * time.Second
	}
	if v := ka.GetKeepaliveInterval(); v != nil {
		out.Interval = time.Duration(v.GetValue()) * time.Second
	}
	if v := ka.GetKeepaliveProbes(); v != nil {
		out.Count = int(v.GetValue())
	}
	return out
}

func settingsOf(c *clusterv3.Cluster, ct time.Duration) (poolSettings, error) {
	s := poolSettings{connectTimeout: ct, idleTimeout: time.Hour, keepAlive: keepAliveOf(c)}
	opts, err := httpOptions(c)
	if err != nil {
		return s, err
	}
	common := opts.GetCommonHttpProtocolOptions()
	if common == nil {
		//lint:ignore SA1019 deprecated but still sent.
		common = c.GetCommonHttpProtocolOptions() //nolint:staticcheck
	}
	if it := common.GetIdleTimeout(); it != nil {
		s.idleTimeout = it.AsDuration()
	}
	if m := common.GetMaxRequestsPerConnection(); m != nil {
		s.maxRequests = m.GetValue()
	}
	if ka := http2Options(c, opts).GetConnectionKeepalive(); ka != nil {
		s.pingInterval = ka.GetInterval().AsDuration()
		s.pingTimeout = ka.GetTimeout().AsDuration()
		if s.pingInterval < 0 || s.pingTimeout < 0 {
			return s, fmt.Errorf("http2_protocol_options.connection_keepalive: interval and timeout must not be negative")
		}
	}
	return s, nil
}
