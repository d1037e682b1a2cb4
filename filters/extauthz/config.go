package extauthz

import (
	"fmt"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/filters/authz"
)

// Config is a compiled ExtAuthz: which authorization service to ask, what
// to send it, and what to do with its answer or its failure.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/ext_authz/v3/ext_authz.proto
type Config struct {
	http *httpService
	grpc *grpcService

	failureModeAllow          bool
	failureModeAllowHeaderAdd bool
	statusOnError             int
	body                      *bodySettings
	clearRouteCache           bool
	includePeerCertificate    bool
	includeTLSSession         bool
	metadataNamespaces        []string

	// allowed and disallowed filter the request headers sent to the
	// service; a nil allowed list sends every header over gRPC and only
	// Envoy's defaults over HTTP.
	allowed, disallowed listMatch

	enabledMetadata *authz.MetadataMatcher
	enabledPercent  *typev3.FractionalPercent // nil: always
	denyAtDisable   bool
}

// bodySettings is with_request_body.
type bodySettings struct {
	max          int
	allowPartial bool
	packAsBytes  bool
}

// httpService is http_service: the request goes to server_uri's cluster
// with path_prefix before the original path.
type httpService struct {
	cluster    string
	authority  string
	timeout    time.Duration
	pathPrefix string

	headersToAdd [][2]string

	upstream, upstreamAppend, client, clientOnSuccess listMatch
	clientSet                                         bool // allowed_client_headers given
}

// grpcService is grpc_service with envoy_grpc: Authorization/Check over a
// connection to the cluster.
type grpcService struct {
	cluster   string
	authority string
	timeout   time.Duration // 200ms unset; an explicit 0 is no deadline but the request's
	metadata  [][2]string   // initial_metadata
}

// Compile validates an ExtAuthz config. Fields whose behavior Waygate
// does not have are refused with their path rather than ignored, since
// an authorization filter that silently does less is a hole.
func Compile(pb *extauthzv3.ExtAuthz) (*Config, error) {
	c := &Config{
		failureModeAllow:          pb.GetFailureModeAllow(),
		failureModeAllowHeaderAdd: pb.GetFailureModeAllowHeaderAdd(),
		statusOnError:             403,
		clearRouteCache:           pb.GetClearRouteCache(),
		includePeerCertificate:    pb.GetIncludePeerCertificate(),
		includeTLSSession:         pb.GetIncludeTlsSession(),
		metadataNamespaces:        pb.GetMetadataContextNamespaces(),
	}
	if v := pb.GetTransportApiVersion(); v != corev3.ApiVersion_V3 && v != corev3.ApiVersion_AUTO {
		return nil, fmt.Errorf("transport_api_version: only V3 is supported, got %v", v)
	}
	if s := pb.GetStatusOnError(); s != nil && s.GetCode() != 0 {
		if s.GetCode() < 100 || s.GetCode() > 599 {
			return nil, fmt.Errorf("status_on_error.code: %d is not an HTTP status", s.GetCode())
		}
		c.statusOnError = int(s.GetCode())
	}
	if b := pb.GetWithRequestBody(); b != nil {
		bs, err := compileBody(b)
		if err != nil {
			return nil, fmt.Errorf("with_request_body.%w", err)
		}
		c.body = bs
	}
	var err error
	if c.allowed, err = compileList(pb.GetAllowedHeaders()); err != nil {
		return nil, fmt.Errorf("allowed_headers.%w", err)
	}
	if c.disallowed, err = compileList(pb.GetDisallowedHeaders()); err != nil {
		return nil, fmt.Errorf("disallowed_headers.%w", err)
	}
	if m := pb.GetFilterEnabledMetadata(); m != nil {
		if c.enabledMetadata, err = authz.CompileMetadataMatcher(m); err != nil {
			return nil, fmt.Errorf("filter_enabled_metadata.%w", err)
		}
	}
	if fe := pb.GetFilterEnabled(); fe != nil {
		c.enabledPercent = fe.GetDefaultValue()
	}
	c.denyAtDisable = pb.GetDenyAtDisable().GetDefaultValue().GetValue()
	if pb.GetShadowMode() {
		return nil, fmt.Errorf("shadow_mode: not supported; use failure_mode_allow or an RBAC shadow rule")
	}
	switch s := pb.GetServices().(type) {
	case *extauthzv3.ExtAuthz_HttpService:
		h, err := compileHTTP(s.HttpService)
		if err != nil {
			return nil, fmt.Errorf("http_service.%w", err)
		}
		if c.allowed == nil && h != nil {
			// The deprecated per-service list, when the top-level one is unset.
			if c.allowed, err = compileList(s.HttpService.GetAuthorizationRequest().GetAllowedHeaders()); err != nil {
				return nil, fmt.Errorf("http_service.authorization_request.allowed_headers.%w", err)
			}
		}
		c.http = h
	case *extauthzv3.ExtAuthz_GrpcService:
		g, err := compileGRPC(s.GrpcService)
		if err != nil {
			return nil, fmt.Errorf("grpc_service.%w", err)
		}
		c.grpc = g
	default:
		return nil, fmt.Errorf("services: one of http_service or grpc_service is required")
	}
	return c, nil
}

func compileBody(b *extauthzv3.BufferSettings) (*bodySettings, error) {
	if b.GetMaxRequestBytes() == 0 {
		return nil, fmt.Errorf("max_request_bytes: must be above 0")
	}
	return &bodySettings{max: int(b.GetMaxRequestBytes()), allowPartial: b.GetAllowPartialMessage(), packAsBytes: b.GetPackAsBytes()}, nil
}

func compileHTTP(h *extauthzv3.HttpService) (*httpService, error) {
	u := h.GetServerUri()
	if u == nil {
		return nil, fmt.Errorf("server_uri: required")
	}
	s := &httpService{cluster: u.GetCluster(), pathPrefix: h.GetPathPrefix()}
	if s.cluster == "" {
		return nil, fmt.Errorf("server_uri.cluster: required")
	}
	if u.GetTimeout() == nil || u.GetTimeout().AsDuration() <= 0 {
		return nil, fmt.Errorf("server_uri.timeout: must be above 0")
	}
	s.timeout = u.GetTimeout().AsDuration()
	s.authority = strings.TrimPrefix(strings.TrimPrefix(u.GetUri(), "http://"), "https://")
	if i := strings.IndexByte(s.authority, '/'); i >= 0 {
		s.authority = s.authority[:i]
	}
	if s.pathPrefix != "" && !strings.HasPrefix(s.pathPrefix, "/") {
		return nil, fmt.Errorf("path_prefix: %q must start with /", s.pathPrefix)
	}
	if h.GetPathOverride() != "" {
		return nil, fmt.Errorf("path_override: not supported; use path_prefix")
	}
	if h.GetRetryPolicy() != nil {
		return nil, fmt.Errorf("retry_policy: not supported")
	}
	for i, hv := range h.GetAuthorizationRequest().GetHeadersToAdd() {
		if hv.GetKey() == "" {
			return nil, fmt.Errorf("authorization_request.headers_to_add[%d].key: required", i)
		}
		s.headersToAdd = append(s.headersToAdd, [2]string{hv.GetKey(), hv.GetValue()})
	}
	r := h.GetAuthorizationResponse()
	var err error
	if s.upstream, err = compileList(r.GetAllowedUpstreamHeaders()); err != nil {
		return nil, fmt.Errorf("authorization_response.allowed_upstream_headers.%w", err)
	}
	if s.upstreamAppend, err = compileList(r.GetAllowedUpstreamHeadersToAppend()); err != nil {
		return nil, fmt.Errorf("authorization_response.allowed_upstream_headers_to_append.%w", err)
	}
	if s.client, err = compileList(r.GetAllowedClientHeaders()); err != nil {
		return nil, fmt.Errorf("authorization_response.allowed_client_headers.%w", err)
	}
	s.clientSet = r.GetAllowedClientHeaders() != nil
	if s.clientOnSuccess, err = compileList(r.GetAllowedClientHeadersOnSuccess()); err != nil {
		return nil, fmt.Errorf("authorization_response.allowed_client_headers_on_success.%w", err)
	}
	return s, nil
}

func compileGRPC(g *corev3.GrpcService) (*grpcService, error) {
	eg := g.GetEnvoyGrpc()
	if eg == nil {
		return nil, fmt.Errorf("google_grpc: not supported; use envoy_grpc with a cluster")
	}
	if eg.GetClusterName() == "" {
		return nil, fmt.Errorf("envoy_grpc.cluster_name: required")
	}
	// Envoy's default gRPC timeout for ext_authz is 200ms.
	s := &grpcService{cluster: eg.GetClusterName(), authority: eg.GetAuthority(), timeout: 200 * time.Millisecond}
	if s.authority == "" {
		s.authority = s.cluster
	}
	if t := g.GetTimeout(); t != nil {
		s.timeout = t.AsDuration()
	}
	for _, hv := range g.GetInitialMetadata() {
		s.metadata = append(s.metadata, [2]string{strings.ToLower(hv.GetKey()), hv.GetValue()})
	}
	return s, nil
}

// RouteConfig is a compiled ExtAuthzPerRoute: the filter disabled on the
// route, or check settings (context extensions, body buffering).
type RouteConfig struct {
	disabled          bool
	contextExtensions map[string]string
	noBody            bool          // disable_request_body_buffering
	body              *bodySettings // with_request_body override
}

// CompileRoute compiles a per-route override. Replacing the service per
// route (check_settings grpc_service / http_service) is refused.
func CompileRoute(pb *extauthzv3.ExtAuthzPerRoute) (*RouteConfig, error) {
	switch o := pb.GetOverride().(type) {
	case *extauthzv3.ExtAuthzPerRoute_Disabled:
		if !o.Disabled {
			return nil, fmt.Errorf("disabled: must be true when set")
		}
		return &RouteConfig{disabled: true}, nil
	case *extauthzv3.ExtAuthzPerRoute_CheckSettings:
		cs := o.CheckSettings
		if cs.GetServiceOverride() != nil {
			return nil, fmt.Errorf("check_settings: a per-route grpc_service or http_service is not supported")
		}
		rc := &RouteConfig{contextExtensions: cs.GetContextExtensions(), noBody: cs.GetDisableRequestBodyBuffering()}
		if b := cs.GetWithRequestBody(); b != nil {
			bs, err := compileBody(b)
			if err != nil {
				return nil, fmt.Errorf("check_settings.with_request_body.%w", err)
			}
			rc.body = bs
		}
		return rc, nil
	}
	return nil, fmt.Errorf("override: one of disabled or check_settings is required")
}
