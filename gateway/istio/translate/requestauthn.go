package translate

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	securityv1beta1 "istio.io/api/security/v1beta1"
	security "istio.io/client-go/pkg/apis/security/v1"

	"github.com/waygate/waygate/gateway/istio"
)

// Defaults of istiod's JWT provider generation.
const (
	jwksFetchTimeout   = 5 * time.Second
	jwksCacheDuration  = 5 * time.Minute
	defaultDelimClaim1 = "permission"
	defaultDelimClaim2 = "scope"
)

// authnChain is the jwt_authn filter of a translation and the clusters
// its remote key sets are fetched through, built once and shared by every
// HTTP connection manager.
type authnChain struct {
	filter   *hcmv3.HttpFilter // nil when no RequestAuthentication applies
	clusters []*clusterv3.Cluster
}

// jwtHTTPFilters is the jwt_authn filter for the chain, none when no
// RequestAuthentication selects the gateway.
func (t *translator) jwtHTTPFilters() []*hcmv3.HttpFilter {
	if t.authn == nil {
		t.authn = t.buildAuthn()
	}
	if t.authn.filter == nil {
		return nil
	}
	return []*hcmv3.HttpFilter{t.authn.filter}
}

// withJWTFilter puts jwt_authn ahead of the chain's filters: istiod's
// order is jwt_authn, then authorization, then everything else.
func withJWTFilter(chain, jwt []*hcmv3.HttpFilter) []*hcmv3.HttpFilter {
	if len(jwt) == 0 {
		return chain
	}
	return append(append([]*hcmv3.HttpFilter(nil), jwt...), chain...)
}

// jwksClusters are the clusters remote JWKS providers fetch through that
// the registry does not already give (have holds the names built).
func (t *translator) jwksClusters(have []*clusterv3.Cluster) []*clusterv3.Cluster {
	if t.authn == nil {
		return nil
	}
	names := map[string]bool{}
	for _, c := range have {
		names[c.Name] = true
	}
	var out []*clusterv3.Cluster
	for _, c := range t.authn.clusters {
		if !names[c.Name] {
			names[c.Name] = true
			out = append(out, c)
		}
	}
	return out
}

// selectRequestAuthentications picks the policies istiod applies to the
// gateway: in the root namespace or the proxy's, selector empty or
// matching the proxy's labels, ordered by creation time then
// namespace/name as istiod orders them. targetRefs attach to Gateway
// API resources, which Waygate does not translate.
// https://istio.io/latest/docs/reference/config/security/request_authentication/
func (t *translator) selectRequestAuthentications() []*security.RequestAuthentication {
	var out []*security.RequestAuthentication
	for _, p := range t.cfg.RequestAuthentications {
		if p.Namespace != rootNamespace && p.Namespace != t.proxy.Namespace {
			continue
		}
		if p.Spec.GetTargetRef() != nil || len(p.Spec.GetTargetRefs()) > 0 {
			t.warn(authnKey(p), "spec.targetRefs", "targetRefs attach a policy to Gateway API resources, which Waygate does not translate; the policy is ignored (use selector)")
			continue
		}
		if !labelsMatch(p.Spec.GetSelector().GetMatchLabels(), t.proxy.Labels) {
			continue
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

func authnKey(p *security.RequestAuthentication) istio.Key {
	return istio.Key{Kind: "RequestAuthentication", Namespace: p.Namespace, Name: p.Name}
}

// buildAuthn translates the selected policies' jwtRules as istiod's
// convertToEnvoyJwtConfig does: one provider origins-<n> per rule, in
// policy order; with one provider the requirement is
// requires_any [origins-0, allow_missing]; with more,
// requires_any [origins-0, …, requires_all [requires_any [origins-i,
// allow_missing] …]], so a request without a token passes, a request
// with a token must carry a valid one, and providers sharing an issuer
// still accept each other's tokens. A rule with presence REQUIRED drops
// its allow_missing.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto
func (t *translator) buildAuthn() *authnChain {
	a := &authnChain{}
	providers := map[string]*jwtauthnv3.JwtProvider{}
	var inner, outer []*jwtauthnv3.JwtRequirement
	required := false
	for _, p := range t.selectRequestAuthentications() {
		for i, r := range p.Spec.GetJwtRules() {
			field := fmt.Sprintf("spec.jwtRules[%d]", i)
			name := fmt.Sprintf("origins-%d", len(providers))
			prov, cluster, err := t.jwtProvider(r)
			if err != nil {
				t.warn(authnKey(p), field, "%v; the rule is left out, so tokens of issuer %q are refused", err, r.GetIssuer())
				continue
			}
			if cluster != nil {
				a.clusters = append(a.clusters, cluster)
			}
			providers[name] = prov
			byName := &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_ProviderName{ProviderName: name}}
			if r.GetPresence() == securityv1beta1.JWTRule_REQUIRED {
				required = true
				inner = append(inner, byName)
			} else {
				inner = append(inner, requiresAnyOf(byName, &jwtauthnv3.JwtRequirement{
					RequiresType: &jwtauthnv3.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}},
				}))
			}
			outer = append(outer, byName)
		}
	}
	if len(providers) == 0 {
		return a
	}
	var requires *jwtauthnv3.JwtRequirement
	switch {
	case len(inner) == 1:
		requires = inner[0]
	case required:
		requires = &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_RequiresAll{
			RequiresAll: &jwtauthnv3.JwtRequirementAndList{Requirements: inner}}}
	default:
		requires = requiresAnyOf(append(outer, &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_RequiresAll{
			RequiresAll: &jwtauthnv3.JwtRequirementAndList{Requirements: inner}}})...)
	}
	cfg := &jwtauthnv3.JwtAuthentication{
		Providers: providers,
		Rules: []*jwtauthnv3.RequirementRule{{
			Match:           &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			RequirementType: &jwtauthnv3.RequirementRule_Requires{Requires: requires},
		}},
		BypassCorsPreflight: true,
	}
	a.filter = &hcmv3.HttpFilter{Name: jwtFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(cfg)}}
	return a
}

func requiresAnyOf(rs ...*jwtauthnv3.JwtRequirement) *jwtauthnv3.JwtRequirement {
	return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_RequiresAny{
		RequiresAny: &jwtauthnv3.JwtRequirementOrList{Requirements: rs}}}
}

// jwtProvider is one jwtRule as istiod writes it: payload in the
// metadata key "payload" (where its RBAC rules read requestPrincipals and
// request.auth.claims), scope and permission normalized to lists, claims
// copied to headers with the route cache cleared so routes can match
// them. jwks is inlined; jwksUri becomes remote_jwks fetched by the
// gateway through the cluster of the URI's host and port: the registry's
// when a ServiceEntry or Service defines it, else one made here, as with
// istiod's PILOT_JWT_ENABLE_REMOTE_JWKS=envoy.
// https://istio.io/latest/docs/reference/config/security/jwt/
func (t *translator) jwtProvider(r *securityv1beta1.JWTRule) (*jwtauthnv3.JwtProvider, *clusterv3.Cluster, error) {
	claims := map[string]bool{defaultDelimClaim1: true, defaultDelimClaim2: true}
	for _, c := range r.GetSpaceDelimitedClaims() {
		claims[c] = true
	}
	delim := make([]string, 0, len(claims))
	for c := range claims {
		delim = append(delim, c)
	}
	sort.Strings(delim)
	p := &jwtauthnv3.JwtProvider{
		Issuer:                     r.GetIssuer(),
		Audiences:                  r.GetAudiences(),
		Forward:                    r.GetForwardOriginalToken(),
		ForwardPayloadHeader:       r.GetOutputPayloadToHeader(),
		PayloadInMetadata:          jwtPayloadKey,
		NormalizePayloadInMetadata: &jwtauthnv3.JwtProvider_NormalizePayload{SpaceDelimitedClaims: delim},
		FromParams:                 r.GetFromParams(),
		FromCookies:                r.GetFromCookies(),
	}
	for _, h := range r.GetFromHeaders() {
		p.FromHeaders = append(p.FromHeaders, &jwtauthnv3.JwtHeader{Name: h.GetName(), ValuePrefix: h.GetPrefix()})
	}
	for _, c := range r.GetOutputClaimToHeaders() {
		p.ClaimToHeaders = append(p.ClaimToHeaders, &jwtauthnv3.JwtClaimToHeader{HeaderName: c.GetHeader(), ClaimName: c.GetClaim()})
	}
	// Claims copied to headers, or matched by routes, can change the
	// route: it is chosen again once a token is verified.
	p.ClearRouteCache = len(p.ClaimToHeaders) > 0 || t.routesOnClaims()

	switch {
	case r.GetJwks() != "":
		p.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
			Specifier: &corev3.DataSource_InlineString{InlineString: r.GetJwks()}}}
		return p, nil, nil
	case r.GetJwksUri() != "":
		cluster, made, err := t.jwksCluster(r.GetJwksUri())
		if err != nil {
			return nil, nil, fmt.Errorf("jwksUri: %v", err)
		}
		timeout := jwksFetchTimeout
		if d := r.GetTimeout(); d != nil && d.AsDuration() > 0 {
			timeout = d.AsDuration()
		}
		p.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_RemoteJwks{RemoteJwks: &jwtauthnv3.RemoteJwks{
			HttpUri: &corev3.HttpUri{
				Uri:              r.GetJwksUri(),
				HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: cluster},
				Timeout:          durationpb.New(timeout),
			},
			CacheDuration: durationpb.New(jwksCacheDuration),
		}}
		return p, made, nil
	}
	return nil, nil, fmt.Errorf("neither jwks nor jwksUri is set (OpenID discovery from the issuer is not supported)")
}

// jwksCluster names the cluster that reaches a JWKS URI,
// outbound|<port>||<host> as istiod's LookupCluster, and builds it when
// the registry has no such service port: STRICT_DNS for a name, STATIC
// for an IP address, with TLS (SNI the host, the server certificate
// verified) for https.
func (t *translator) jwksCluster(raw string) (string, *clusterv3.Cluster, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return "", nil, fmt.Errorf("%q is not an http or https URL", raw)
	}
	host := u.Hostname()
	port := uint32(80)
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return "", nil, fmt.Errorf("%q: bad port %q", raw, p)
		}
		port = uint32(n)
	}
	name := clusterName(port, "", host)
	if svc := t.registry.lookup(host, t.proxy.Namespace); svc != nil {
		for _, sp := range svc.ports {
			if sp.number == port {
				return name, nil, nil
			}
		}
	}
	c := &clusterv3.Cluster{
		Name:           name,
		ConnectTimeout: defaultConnectTimeout,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
				}}},
			}}}},
		}}},
	}
	if net.ParseIP(host) != nil {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	} else {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		c.DnsLookupFamily = clusterv3.Cluster_V4_ONLY
	}
	if u.Scheme == "https" {
		c.TransportSocket = upstreamSocket(&tlsv3.UpstreamTlsContext{
			Sni: host,
			CommonTlsContext: &tlsv3.CommonTlsContext{
				ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{}},
			},
		})
	}
	return name, c, nil
}
