package translate

import (
	"fmt"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/api/networking/v1alpha3"
)

// Names of the HTTP filters per-route configs are keyed by.
const (
	faultFilter  = "envoy.filters.http.fault"
	corsFilter   = "envoy.filters.http.cors"
	routerFilter = "envoy.filters.http.router"
)

// buildHTTPRoutes translates the http rules of vs for a gateway server on
// port, as istiod's BuildHTTPRoutesForVirtualService: one Envoy route per
// match (a rule without match is one catch-all route), and nothing after
// a catch-all, which would never be reached.
func (t *translator) buildHTTPRoutes(vs *virtualService, port uint32, gateway string, isTLS bool) []*routev3.Route {
	var out []*routev3.Route
	for i, rule := range vs.spec.Http {
		field := "spec.http[" + strconv.Itoa(i) + "]"
		if vs.fields != nil {
			field = vs.fields[i]
		}
		if rule.Delegate != nil {
			// resolveDelegates replaced every delegating rule.
			continue
		}
		if len(rule.Match) == 0 {
			if r := t.translateRoute(vs, field, rule, nil, port, gateway, isTLS); r != nil {
				out = append(out, r)
			}
			break
		}
		catchAll := false
		for j, m := range rule.Match {
			r := t.translateRoute(vs, field+".match["+strconv.Itoa(j)+"]", rule, m, port, gateway, isTLS)
			if r == nil {
				continue
			}
			out = append(out, r)
			if isCatchAll(r) {
				catchAll = true
				break
			}
		}
		if catchAll {
			break
		}
	}
	return out
}

// translateRoute translates one rule with one of its matches, following
// istiod's TranslateRoute. It returns nil when the match does not apply
// to this gateway server (port, gateways, sourceLabels).
func (t *translator) translateRoute(vs *virtualService, field string, in *v1alpha3.HTTPRoute,
	match *v1alpha3.HTTPMatchRequest, port uint32, gateway string, isTLS bool,
) *routev3.Route {
	if match != nil && match.Port != 0 && match.Port != port {
		return nil
	}
	if !t.sourceMatches(match, gateway, vs.key.Namespace) {
		return nil
	}
	name := in.Name
	if match != nil && match.Name != "" {
		name += "." + match.Name
	}
	rm, unsupported := translateMatch(match)
	if unsupported != "" {
		// Dropping only the condition would widen the route; drop the
		// match instead so nothing is routed that the author excluded.
		t.warn(vs.key, field, "%s: a JWT claim match needs @request.auth.claims.<claim> or @request.auth.claims[<claim>] and a match; the match is left out", unsupported)
		return nil
	}
	if vs.metadata == nil {
		vs.metadata = configMetadata("virtual-service", vs.key.Namespace, vs.key.Name)
	}
	out := &routev3.Route{
		Name:     name,
		Match:    rm,
		Metadata: vs.metadata,
	}
	if match != nil && match.StatPrefix != "" {
		out.StatPrefix = match.StatPrefix
	}

	authority := ""
	if in.Headers != nil {
		ops := translateHeaders(in.Headers)
		out.RequestHeadersToAdd = ops.requestAdd
		out.ResponseHeadersToAdd = ops.responseAdd
		out.RequestHeadersToRemove = ops.requestRemove
		out.ResponseHeadersToRemove = ops.responseRemove
		authority = ops.authority
	}

	switch {
	case in.Redirect != nil:
		applyRedirect(out, in.Redirect, port, isTLS)
		if out.Action == nil {
			t.warn(vs.key, field+".redirect.redirectCode", "redirect code %d is not one of 301, 302, 303, 307, 308", in.Redirect.RedirectCode)
		}
	case in.DirectResponse != nil:
		applyDirectResponse(out, in.DirectResponse)
	default:
		t.applyDestination(out, vs, field, in, authority, port)
	}

	out.Decorator = &routev3.Decorator{Operation: routeOperation(out, vs.key.Name, port)}

	if in.Fault != nil || in.CorsPolicy != nil {
		out.TypedPerFilterConfig = map[string]*anypb.Any{}
	}
	if in.Fault != nil {
		f, problem := translateFault(in.Fault)
		if problem != "" {
			t.warn(vs.key, field+".fault", "%s", problem)
		}
		if f != nil {
			out.TypedPerFilterConfig[faultFilter] = mustAny(f)
		}
	}
	if in.CorsPolicy != nil {
		out.TypedPerFilterConfig[corsFilter] = mustAny(translateCORS(in.CorsPolicy))
	}
	return out
}

// sourceMatches applies the source conditions of a match for a gateway
// proxy as istiod does: a match naming gateways applies to those only;
// otherwise its sourceLabels must be labels of the gateway proxy and its
// sourceNamespace the proxy's namespace.
func (t *translator) sourceMatches(m *v1alpha3.HTTPMatchRequest, gateway, vsNamespace string) bool {
	if m == nil {
		return true
	}
	if len(m.Gateways) > 0 {
		for _, g := range m.Gateways {
			if resolveGatewayName(g, vsNamespace) == gateway {
				return true
			}
		}
		return false
	}
	if !labelsSubset(m.SourceLabels, t.proxy.Labels) {
		return false
	}
	return m.SourceNamespace == "" || m.SourceNamespace == t.proxy.Namespace
}

// applyDestination sets the route action of a rule that forwards: the
// cluster or weighted clusters, timeout, rewrites, mirrors, hash policy
// and retry policy.
func (t *translator) applyDestination(out *routev3.Route, vs *virtualService, field string,
	in *v1alpha3.HTTPRoute, authority string, port uint32,
) {
	action := &routev3.RouteAction{}
	// No timeout unless the rule sets one, as istiod (timeout "0s").
	timeout := durationpb.New(0)
	if in.Timeout != nil {
		timeout = in.Timeout
	}
	action.Timeout = timeout
	//nolint:staticcheck // istiod still sets the deprecated field so grpc-timeout is honored.
	action.MaxGrpcTimeout = timeout
	out.Action = &routev3.Route_Route{Route: action}

	if rw := in.Rewrite; rw != nil {
		if re := rw.GetUriRegexRewrite(); re != nil {
			action.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{
				Pattern:      &matcherv3.RegexMatcher{Regex: re.Match},
				Substitution: re.Rewrite,
			}
		} else if rw.Uri != "" {
			action.PrefixRewrite = rw.Uri
		}
		if rw.Authority != "" {
			authority = rw.Authority
		}
	}
	if authority != "" {
		action.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: authority}
	}

	//nolint:staticcheck // mirror and mirrorPercent are deprecated but still accepted by Istio.
	if in.Mirror != nil {
		if mp := mirrorPercent(in); mp != nil {
			action.RequestMirrorPolicies = append(action.RequestMirrorPolicies,
				mirrorPolicy(t.destinationCluster(vs, field+".mirror", in.Mirror, port), mp))
		}
	}
	for i, m := range in.Mirrors {
		if m.Destination == nil {
			continue
		}
		mp := &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100}}
		if m.Percentage != nil {
			if m.Percentage.GetValue() <= 0 {
				continue
			}
			mp = &corev3.RuntimeFractionalPercent{DefaultValue: percentToFraction(m.Percentage)}
		}
		action.RequestMirrorPolicies = append(action.RequestMirrorPolicies,
			mirrorPolicy(t.destinationCluster(vs, fmt.Sprintf("%s.mirrors[%d]", field, i), m.Destination, port), mp))
	}

	consistentHash := false
	if len(in.Route) == 1 {
		dst := in.Route[0]
		action.ClusterSpecifier = &routev3.RouteAction_Cluster{
			Cluster: t.destinationCluster(vs, field+".route[0]", dst.Destination, port),
		}
		if dst.Headers != nil {
			ops := translateHeaders(dst.Headers)
			out.RequestHeadersToAdd = append(out.RequestHeadersToAdd, ops.requestAdd...)
			out.RequestHeadersToRemove = append(out.RequestHeadersToRemove, ops.requestRemove...)
			out.ResponseHeadersToAdd = append(out.ResponseHeadersToAdd, ops.responseAdd...)
			out.ResponseHeadersToRemove = append(out.ResponseHeadersToRemove, ops.responseRemove...)
			if ops.authority != "" && action.HostRewriteSpecifier == nil {
				action.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: ops.authority}
			}
		}
		if hp := t.hashPolicy(dst.Destination, vs.key.Namespace); hp != nil {
			action.HashPolicy = append(action.HashPolicy, hp)
			consistentHash = true
		}
	} else {
		wc := &routev3.WeightedCluster{}
		for i, dst := range in.Route {
			if dst.Weight == 0 {
				continue
			}
			cw := &routev3.WeightedCluster_ClusterWeight{
				Name:   t.destinationCluster(vs, fmt.Sprintf("%s.route[%d]", field, i), dst.Destination, port),
				Weight: wrapperspb.UInt32(uint32(dst.Weight)),
			}
			if dst.Headers != nil {
				ops := translateHeaders(dst.Headers)
				cw.RequestHeadersToAdd = ops.requestAdd
				cw.RequestHeadersToRemove = ops.requestRemove
				cw.ResponseHeadersToAdd = ops.responseAdd
				cw.ResponseHeadersToRemove = ops.responseRemove
				if ops.authority != "" {
					cw.HostRewriteSpecifier = &routev3.WeightedCluster_ClusterWeight_HostRewriteLiteral{HostRewriteLiteral: ops.authority}
				}
			}
			wc.Clusters = append(wc.Clusters, cw)
			if hp := t.hashPolicy(dst.Destination, vs.key.Namespace); hp != nil {
				action.HashPolicy = append(action.HashPolicy, hp)
			}
		}
		if len(wc.Clusters) == 0 {
			t.warn(vs.key, field+".route", "no destination has a weight; requests get 503")
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: blackHoleCluster, Weight: wrapperspb.UInt32(100)})
		}
		action.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	action.RetryPolicy = translateRetries(in.Retries, consistentHash)
}

// destinationCluster is the outbound cluster of a destination, as
// istiod's GetDestinationCluster: the destination port, else the only
// port of the service, else the listener port.
func (t *translator) destinationCluster(vs *virtualService, field string, d *v1alpha3.Destination, listenerPort uint32) string {
	if d == nil || d.Host == "" {
		t.warn(vs.key, field, "destination has no host")
		return blackHoleCluster
	}
	host := t.fqdn(d.Host, vs.key.Namespace)
	svc := t.registry.lookup(host, vs.key.Namespace)
	port := listenerPort
	switch {
	case d.GetPort().GetNumber() != 0:
		port = d.Port.Number
	case svc != nil && len(svc.ports) == 1:
		port = svc.ports[0].number
	}
	if svc == nil {
		t.warn(vs.key, field+".destination.host", "no service %q is known; requests to it get 503", host)
	} else if !svc.hasPort(port) {
		t.warn(vs.key, field+".destination.port", "service %q has no port %d; requests to it get 503", host, port)
	}
	if d.Subset != "" && svc != nil {
		if dr := t.rules.forHost(host, t.proxy.Namespace, svc.namespace); dr.subset(d.Subset) == nil {
			t.warn(vs.key, field+".destination.subset", "no DestinationRule defines subset %q of %q; requests to it get 503", d.Subset, host)
		}
	}
	return clusterName(port, d.Subset, host)
}

func (s *service) hasPort(n uint32) bool {
	for _, p := range s.ports {
		if p.number == n {
			return true
		}
	}
	return false
}

// clusterName is istiod's subset key: outbound|<port>|<subset>|<host>.
func clusterName(port uint32, subset, host string) string {
	return "outbound|" + strconv.Itoa(int(port)) + "|" + subset + "|" + host
}

// mirrorPercent is the share of requests mirrored by the deprecated
// mirror field: mirrorPercentage, else mirrorPercent, else all; nil when
// an explicit zero turns mirroring off.
func mirrorPercent(in *v1alpha3.HTTPRoute) *corev3.RuntimeFractionalPercent {
	switch {
	case in.MirrorPercentage != nil:
		if in.MirrorPercentage.GetValue() > 0 {
			return &corev3.RuntimeFractionalPercent{DefaultValue: percentToFraction(in.MirrorPercentage)}
		}
		return nil
	case in.MirrorPercent != nil: //nolint:staticcheck // deprecated but accepted.
		if v := in.MirrorPercent.GetValue(); v > 0 { //nolint:staticcheck
			return &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: v}}
		}
		return nil
	}
	return &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100}}
}

func mirrorPolicy(cluster string, p *corev3.RuntimeFractionalPercent) *routev3.RouteAction_RequestMirrorPolicy {
	return &routev3.RouteAction_RequestMirrorPolicy{Cluster: cluster, RuntimeFraction: p, TraceSampled: wrapperspb.Bool(false)}
}

// applyRedirect follows istiod's ApplyRedirect
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRedirect):
// derivePort FROM_REQUEST_PORT is the listener port, and the default
// port of the scheme is never written.
func applyRedirect(out *routev3.Route, r *v1alpha3.HTTPRedirect, port uint32, isTLS bool) {
	ra := &routev3.RedirectAction{HostRedirect: r.Authority}
	if r.PrefixRewrite != "" {
		ra.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: r.PrefixRewrite}
	} else {
		ra.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: r.Uri}
	}
	if r.Scheme != "" {
		ra.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: r.Scheme}
	}
	if r.RedirectPort != nil {
		switch rp := r.RedirectPort.(type) {
		case *v1alpha3.HTTPRedirect_DerivePort:
			if rp.DerivePort == v1alpha3.HTTPRedirect_FROM_REQUEST_PORT {
				ra.PortRedirect = port
			}
		case *v1alpha3.HTTPRedirect_Port:
			ra.PortRedirect = rp.Port
		}
		scheme := r.Scheme
		if scheme == "" {
			scheme = "http"
			if isTLS {
				scheme = "https"
			}
		}
		if (ra.PortRedirect == 80 && scheme == "http") || (ra.PortRedirect == 443 && scheme == "https") {
			ra.PortRedirect = 0
		}
	}
	switch r.RedirectCode {
	case 0, 301:
		ra.ResponseCode = routev3.RedirectAction_MOVED_PERMANENTLY
	case 302:
		ra.ResponseCode = routev3.RedirectAction_FOUND
	case 303:
		ra.ResponseCode = routev3.RedirectAction_SEE_OTHER
	case 307:
		ra.ResponseCode = routev3.RedirectAction_TEMPORARY_REDIRECT
	case 308:
		ra.ResponseCode = routev3.RedirectAction_PERMANENT_REDIRECT
	default:
		out.Action = nil
		return
	}
	out.Action = &routev3.Route_Redirect{Redirect: ra}
}

func applyDirectResponse(out *routev3.Route, d *v1alpha3.HTTPDirectResponse) {
	dr := &routev3.DirectResponseAction{Status: d.Status}
	switch b := d.GetBody().GetSpecifier().(type) {
	case *v1alpha3.HTTPBody_String_:
		dr.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: b.String_}}
	case *v1alpha3.HTTPBody_Bytes:
		dr.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b.Bytes}}
	}
	out.Action = &routev3.Route_DirectResponse{DirectResponse: dr}
}

// routeOperation is the tracing decorator istiod writes: host:port/path
// of the only destination cluster, else <virtual service>:<port>/path.
func routeOperation(r *routev3.Route, vsName string, port uint32) string {
	path := "/*"
	m := r.GetMatch()
	switch m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		path = m.GetPrefix() + "*"
	case *routev3.RouteMatch_Path:
		path = m.GetPath()
	case *routev3.RouteMatch_SafeRegex:
		path = m.GetSafeRegex().GetRegex()
	}
	if c := r.GetRoute().GetCluster(); strings.HasPrefix(c, "outbound|") {
		parts := strings.SplitN(c, "|", 4)
		if len(parts) == 4 {
			return parts[3] + ":" + parts[1] + path
		}
	}
	return vsName + ":" + strconv.Itoa(int(port)) + path
}

// configMetadata is the filter_metadata istiod attaches to resources
// generated from a config: istio.config = /apis/networking.istio.io/v1/
// namespaces/<ns>/<kind>/<name>.
func configMetadata(kind, namespace, name string) *corev3.Metadata {
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"istio": {Fields: map[string]*structpb.Value{
			"config": structpb.NewStringValue(configPath(kind, namespace, name)),
		}},
	}}
}

func configPath(kind, namespace, name string) string {
	return "/apis/networking.istio.io/v1/namespaces/" + namespace + "/" + kind + "/" + name
}
