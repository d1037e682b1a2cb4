package translate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	meshconfig "istio.io/api/mesh/v1alpha1"
)

// extAuthzFilter is the name istiod gives the ext_authz filter.
const extAuthzFilter = "envoy.filters.http.ext_authz"

// extAuthzShadowPrefix is the shadow stat prefix of the RBAC filter
// before ext_authz; its shadow_effective_policy_id tells ext_authz
// whether a CUSTOM rule matched.
const extAuthzShadowPrefix = "istio_ext_authz_"

// extAuthzProvider resolves meshConfig.extensionProviders entry name into
// the ext_authz config istiod would generate for it
// (pilot/pkg/security/authz/builder/extauthz.go), or says why it cannot.
// https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/#MeshConfig-ExtensionProvider
func (t *translator) extAuthzProvider(name string) (*extauthzv3.ExtAuthz, error) {
	var found *meshconfig.MeshConfig_ExtensionProvider
	for _, p := range t.proxy.ExtensionProviders {
		if p.GetName() != name {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("extension provider name must be unique, found duplicate: %s", name)
		}
		found = p
	}
	if found == nil {
		var names []string
		for _, p := range t.proxy.ExtensionProviders {
			names = append(names, p.GetName())
		}
		return nil, fmt.Errorf("available providers are %v but found %q", names, name)
	}
	switch p := found.GetProvider().(type) {
	case *meshconfig.MeshConfig_ExtensionProvider_EnvoyExtAuthzHttp:
		return t.extAuthzHTTP(p.EnvoyExtAuthzHttp)
	case *meshconfig.MeshConfig_ExtensionProvider_EnvoyExtAuthzGrpc:
		return t.extAuthzGRPC(p.EnvoyExtAuthzGrpc)
	}
	return nil, fmt.Errorf("extension provider %q is not an envoyExtAuthzHttp or envoyExtAuthzGrpc provider", name)
}

// lookupProviderService finds "<namespace>/<hostname>" or "<hostname>"
// in the registry, as istiod's LookupCluster does.
func (t *translator) lookupProviderService(name string, port uint32) (hostname, cluster string, err error) {
	if name == "" {
		return "", "", fmt.Errorf("service must not be empty")
	}
	if port < 1 || port > 65535 {
		return "", "", fmt.Errorf("port must be in the range [1, 65535], found: %d", port)
	}
	ns, host, scoped := strings.Cut(name, "/")
	if !scoped {
		host = name
	}
	var match *service
	for _, s := range t.registry.byHost[host] {
		if scoped && s.namespace != ns {
			continue
		}
		if match != nil && match.namespace != s.namespace {
			return "", "", fmt.Errorf("found %s in multiple namespaces, specify the namespace explicitly in the format of <Namespace>/<Hostname>", name)
		}
		match = s
	}
	if match == nil {
		return "", "", fmt.Errorf("could not find service %s in Istio service registry", name)
	}
	return match.hostname, clusterName(port, "", match.hostname), nil
}

func statusOnError(s string) (*typev3.HttpStatus, error) {
	if s == "" {
		return nil, nil
	}
	code, err := strconv.Atoi(s)
	if err != nil {
		return nil, fmt.Errorf("invalid statusOnError %q: %v", s, err)
	}
	if _, ok := typev3.StatusCode_name[int32(code)]; !ok {
		return nil, fmt.Errorf("unsupported statusOnError %s", s)
	}
	return &typev3.HttpStatus{Code: typev3.StatusCode(code)}, nil
}

func timeoutOrDefault(d *durationpb.Duration) *durationpb.Duration {
	if d == nil {
		return durationpb.New(600e9)
	}
	return d
}

func bodySettings(b *meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationRequestBody) *extauthzv3.BufferSettings {
	if b == nil {
		return nil
	}
	return &extauthzv3.BufferSettings{MaxRequestBytes: b.GetMaxRequestBytes(), AllowPartialMessage: b.GetAllowPartialMessage(), PackAsBytes: b.GetPackAsBytes()}
}

// headerList is a list of header names in Istio's value syntax, compared
// case-insensitively.
func headerList(names []string) (*matcherv3.ListStringMatcher, error) {
	if len(names) == 0 {
		return nil, nil
	}
	l := &matcherv3.ListStringMatcher{}
	for _, n := range names {
		if n == "*" {
			return nil, fmt.Errorf("a single wildcard (\"*\") is not supported, change it to either prefix or suffix match")
		}
		m := &matcherv3.StringMatcher{IgnoreCase: true}
		switch {
		case strings.HasPrefix(n, "*"):
			m.MatchPattern = &matcherv3.StringMatcher_Suffix{Suffix: n[1:]}
		case strings.HasSuffix(n, "*"):
			m.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: n[:len(n)-1]}
		default:
			m.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: n}
		}
		l.Patterns = append(l.Patterns, m)
	}
	return l, nil
}

func (t *translator) extAuthzHTTP(c *meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationHttpProvider) (*extauthzv3.ExtAuthz, error) {
	hostname, cluster, err := t.lookupProviderService(c.GetService(), c.GetPort())
	if err != nil {
		return nil, err
	}
	status, err := statusOnError(c.GetStatusOnError())
	if err != nil {
		return nil, err
	}
	if p := c.GetPathPrefix(); p != "" && !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("pathPrefix must begin with `/`, found: %q", p)
	}
	service := &extauthzv3.HttpService{
		PathPrefix: c.GetPathPrefix(),
		ServerUri: &corev3.HttpUri{
			Uri:              "http://" + hostname,
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: cluster},
			Timeout:          timeoutOrDefault(c.GetTimeout()),
		},
	}
	lists := map[string]*matcherv3.ListStringMatcher{}
	for field, names := range map[string][]string{
		"includeRequestHeadersInCheck": c.GetIncludeRequestHeadersInCheck(),
		"includeHeadersInCheck":        c.GetIncludeHeadersInCheck(), // deprecated, still read by istiod
		"headersToUpstreamOnAllow":     c.GetHeadersToUpstreamOnAllow(),
		"headersToDownstreamOnDeny":    c.GetHeadersToDownstreamOnDeny(),
		"headersToDownstreamOnAllow":   c.GetHeadersToDownstreamOnAllow(),
	} {
		l, err := headerList(names)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", field, err)
		}
		lists[field] = l
	}
	allowed := lists["includeRequestHeadersInCheck"]
	if allowed == nil {
		allowed = lists["includeHeadersInCheck"]
	}
	if add := c.GetIncludeAdditionalHeadersInCheck(); len(add) > 0 {
		keys := make([]string, 0, len(add))
		for k := range add {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		req := &extauthzv3.AuthorizationRequest{}
		for _, k := range keys {
			req.HeadersToAdd = append(req.HeadersToAdd, &corev3.HeaderValue{Key: k, Value: add[k]})
		}
		service.AuthorizationRequest = req
	}
	if lists["headersToUpstreamOnAllow"] != nil || lists["headersToDownstreamOnDeny"] != nil || lists["headersToDownstreamOnAllow"] != nil {
		service.AuthorizationResponse = &extauthzv3.AuthorizationResponse{
			AllowedUpstreamHeaders:        lists["headersToUpstreamOnAllow"],
			AllowedClientHeaders:          lists["headersToDownstreamOnDeny"],
			AllowedClientHeadersOnSuccess: lists["headersToDownstreamOnAllow"],
		}
	}
	return &extauthzv3.ExtAuthz{
		StatusOnError:       status,
		FailureModeAllow:    c.GetFailOpen(),
		TransportApiVersion: corev3.ApiVersion_V3,
		Services:            &extauthzv3.ExtAuthz_HttpService{HttpService: service},
		WithRequestBody:     bodySettings(c.GetIncludeRequestBodyInCheck()),
		AllowedHeaders:      allowed,
	}, nil
}

func (t *translator) extAuthzGRPC(c *meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider) (*extauthzv3.ExtAuthz, error) {
	hostname, cluster, err := t.lookupProviderService(c.GetService(), c.GetPort())
	if err != nil {
		return nil, err
	}
	status, err := statusOnError(c.GetStatusOnError())
	if err != nil {
		return nil, err
	}
	return &extauthzv3.ExtAuthz{
		StatusOnError:    status,
		FailureModeAllow: c.GetFailOpen(),
		Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster, Authority: hostname}},
			Timeout:         timeoutOrDefault(c.GetTimeout()),
		}},
		TransportApiVersion: corev3.ApiVersion_V3,
		WithRequestBody:     bodySettings(c.GetIncludeRequestBodyInCheck()),
	}, nil
}

// extAuthzEnabledFor is the filter_enabled_metadata that runs ext_authz
// only when the shadow RBAC before it matched a policy of provider.
func extAuthzEnabledFor(provider string) *matcherv3.MetadataMatcher {
	return &matcherv3.MetadataMatcher{
		Filter: rbacFilter,
		Path:   metadataPath(extAuthzShadowPrefix + "shadow_effective_policy_id"),
		Value:  stringValue(prefixMatch(extAuthzPolicyPrefix+"-"+provider, false)),
	}
}
