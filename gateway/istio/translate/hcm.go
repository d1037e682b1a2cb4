package translate

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const hcmFilter = "envoy.filters.network.http_connection_manager"

// adsConfigSource is where RDS and EDS resources come from: the ADS
// stream itself, without an initial fetch timeout, as istiod configures
// its proxies.
func adsConfigSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		InitialFetchTimeout:   durationpb.New(0),
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// httpFilters is the HTTP filter chain istiod gives a gateway, restricted
// to the filters Waygate's configuration produces, in istiod's order
// (fault, cors, router): jwt_authn, rbac and wasm go before fault when
// their resources exist. The filters carry empty configs; routes turn
// them on through typed_per_filter_config.
func httpFilters() []*hcmv3.HttpFilter {
	return []*hcmv3.HttpFilter{
		{Name: faultFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultv3.HTTPFault{})}},
		{Name: corsFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&corsv3.Cors{})}},
		{Name: routerFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})}},
	}
}

// connectionManager is the HTTP connection manager of a gateway filter
// chain, with the fields of istiod's buildGatewayConnectionManager that
// change behavior: the client address is the peer (use_remote_address),
// client certificate details are sanitized and set, websockets may
// upgrade, paths are normalized and escaped slashes kept, no stream idle
// timeout. Access logs and tracing are left out until configured.
func (t *translator) connectionManager(statPrefix, routeName string) *hcmv3.HttpConnectionManager {
	m := baseConnectionManager(statPrefix, routeName)
	m.HttpFilters = withJWTFilter(m.HttpFilters, t.jwtHTTPFilters())
	m.HttpFilters = withAuthzFilters(m.HttpFilters, t.authzHTTPFilters())
	m.HttpFilters = withRateLimitFilters(m.HttpFilters, t.rateLimitHTTPFilters())
	m.HttpFilters = withWasmFilters(m.HttpFilters, t.wasmHTTPFilters())
	t.applyTopology(m)
	if f := t.proxy.AccessLogFile; f != "" {
		m.AccessLog = []*accesslogv3.AccessLog{{
			Name:       "envoy.access_loggers.file",
			ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(&filev3.FileAccessLog{Path: f})},
		}}
	}
	return m
}

func baseConnectionManager(statPrefix, routeName string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsConfigSource(),
			RouteConfigName: routeName,
		}},
		HttpFilters:              httpFilters(),
		HttpProtocolOptions:      &corev3.Http1ProtocolOptions{},
		ServerName:               "istio-envoy",
		StreamIdleTimeout:        durationpb.New(0),
		UseRemoteAddress:         wrapperspb.Bool(true),
		ForwardClientCertDetails: hcmv3.HttpConnectionManager_SANITIZE_SET,
		SetCurrentClientCertDetails: &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{
			Subject: wrapperspb.Bool(true), Cert: true, Dns: true, Uri: true,
		},
		Proxy_100Continue:            true,
		UpgradeConfigs:               []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
		NormalizePath:                wrapperspb.Bool(true),
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_KEEP_UNCHANGED,
	}
}

func hcmNetworkFilter(h *hcmv3.HttpConnectionManager) *listenerv3.Filter {
	return &listenerv3.Filter{Name: hcmFilter, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(h)}}
}
