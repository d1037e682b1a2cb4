package router

import (
	"errors"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
)

// Route is one compiled route of a virtual host. Exactly one of Forward,
// Redirect and Direct is set, unless NonForwarding is true. Its fields
// are read-only after Compile.
type Route struct {
	name  string
	vhost *VirtualHost
	m     routeMatch

	// Forward is the route action: send the request upstream.
	Forward *Forward
	// Redirect answers with a redirect; see Location.
	Redirect *Redirect
	// Direct answers with a fixed response.
	Direct *DirectResponse
	// NonForwarding marks a route that only carries per-filter config for
	// filters that answer the request themselves.
	NonForwarding bool

	// Operation is the decorator's operation name, for tracing.
	Operation string
	// Metadata is the route's filter metadata (Istio records the
	// VirtualService it came from here).
	Metadata *corev3.Metadata

	reqHeaders  *headerMutation
	respHeaders *headerMutation
	perFilter   perFilter
	cfg         *routev3.Route
}

var _ filters.Route = (*Route)(nil)

// Resolve returns the compiled route behind the route a filter sees
// (Exchange.Route), and the weighted cluster picked when it was matched
// (Table.MatchExchange); nil for routes of other origins.
func Resolve(fr filters.Route) (*Route, *WeightedCluster) {
	switch v := fr.(type) {
	case *Route:
		return v, nil
	case *WeightedCluster:
		return v.route, v
	}
	return nil, nil
}

// Name is the route's name, "" when the config gives none.
func (r *Route) Name() string { return r.name }

// VirtualHost is the name of the route's virtual host.
func (r *Route) VirtualHost() string { return r.vhost.name }

// VHost is the route's virtual host.
func (r *Route) VHost() *VirtualHost { return r.vhost }

// Config is the route as received, for filters that read fields Waygate
// does not compile (rate_limits, cors, tracing). It must not be modified.
func (r *Route) Config() *routev3.Route { return r.cfg }

// Cluster is the cluster of a single-cluster route; "" for weighted,
// cluster_header, redirect and direct-response routes.
func (r *Route) Cluster() string {
	if r.Forward == nil {
		return ""
	}
	return r.Forward.ClusterName
}

// PerFilterConfig returns the compiled typed_per_filter_config for the
// filter named name: the route's, else the virtual host's, else the route
// configuration's; nil when none sets it, filters.Disabled{} when the
// most specific level disables the filter.
func (r *Route) PerFilterConfig(name string) any {
	if v, ok := r.perFilter[name]; ok {
		return v
	}
	if v, ok := r.vhost.perFilter[name]; ok {
		return v
	}
	if v, ok := r.vhost.table.perFilter[name]; ok {
		return v
	}
	return nil
}

// Target resolves where a forwarding route sends req: the cluster name,
// and the weighted cluster when the route has weighted clusters (picked
// with random, which the caller draws once per request). cluster is ""
// when a cluster_header is missing, and for non-forwarding routes.
func (r *Route) Target(req *filters.Request, random uint64) (cluster string, wc *WeightedCluster) {
	f := r.Forward
	switch {
	case f == nil:
		return "", nil
	case f.ClusterName != "":
		return f.ClusterName, nil
	case f.ClusterHeader != "":
		return req.Header.Get(f.ClusterHeader), nil
	}
	wc = f.Pick(req, random)
	return wc.ClusterFor(req), wc
}

// requestCtx is the command-operator context of the request phase.
func requestCtx(x *filters.Exchange) fmtContext {
	return fmtContext{req: &x.Request, conn: &x.Downstream, info: &x.Info}
}

// ApplyRequestHeaders applies request_headers_to_add/remove in Envoy's
// order: the weighted cluster's (wc may be nil), then the route's, the
// virtual host's and the route configuration's, or the reverse of the last
// three when most_specific_header_mutations_wins is set, so that the
// level applied last wins an overwrite.
func (r *Route) ApplyRequestHeaders(x *filters.Exchange, wc *WeightedCluster) {
	if x.Request.Header == nil {
		x.Request.Header = make(map[string][]string)
	}
	c := requestCtx(x)
	h := x.Request.Header
	if wc != nil {
		wc.reqHeaders.apply(h, &c)
	}
	t := r.vhost.table
	if t.mostSpecificWins {
		t.reqHeaders.apply(h, &c)
		r.vhost.reqHeaders.apply(h, &c)
		r.reqHeaders.apply(h, &c)
		return
	}
	r.reqHeaders.apply(h, &c)
	r.vhost.reqHeaders.apply(h, &c)
	t.reqHeaders.apply(h, &c)
}

// ApplyResponseHeaders applies response_headers_to_add/remove to
// x.Response, in the same order as ApplyRequestHeaders. It applies to
// upstream responses and to the route's own redirect or direct responses.
func (r *Route) ApplyResponseHeaders(x *filters.Exchange, wc *WeightedCluster) {
	if x.Response.Header == nil {
		x.Response.Header = make(map[string][]string)
	}
	c := fmtContext{req: &x.Request, conn: &x.Downstream, info: &x.Info, resp: &x.Response}
	h := x.Response.Header
	if wc != nil {
		wc.respHeaders.apply(h, &c)
	}
	t := r.vhost.table
	if t.mostSpecificWins {
		t.respHeaders.apply(h, &c)
		r.vhost.respHeaders.apply(h, &c)
		r.respHeaders.apply(h, &c)
		return
	}
	r.respHeaders.apply(h, &c)
	r.vhost.respHeaders.apply(h, &c)
	t.respHeaders.apply(h, &c)
}

// RewritePath returns the upstream path for a request path (with query)
// after prefix_rewrite or regex_rewrite, and whether the route rewrites.
func (r *Route) RewritePath(path string) (string, bool) {
	f := r.Forward
	if f == nil || (!f.hasPrefixRewrite && f.RegexRewrite == nil) {
		return path, false
	}
	return r.m.rewritePath(path, f.PrefixRewrite, f.hasPrefixRewrite, f.RegexRewrite), true
}

// RewriteHost returns the authority the route sets for req and whether it
// sets one: host_rewrite_literal, host_rewrite_header (when present),
// host_rewrite_path_regex or host_rewrite. auto_host_rewrite is left to
// the router, which knows the upstream host.
func (r *Route) RewriteHost(x *filters.Exchange) (string, bool) {
	f := r.Forward
	if f == nil {
		return "", false
	}
	switch {
	case f.HostRewriteLiteral != "":
		return f.HostRewriteLiteral, true
	case f.HostRewriteHeader != "":
		if v := x.Request.Header.Get(f.HostRewriteHeader); v != "" {
			return v, true
		}
	case f.HostRewritePathRegex != nil:
		p, _ := splitPath(x.Request.Path)
		return f.HostRewritePathRegex.Replace(p), true
	case f.hostRewriteFormat != nil:
		c := requestCtx(x)
		if v := f.hostRewriteFormat.render(&c); v != "" {
			return v, true
		}
	}
	return "", false
}

// FinalizeRequest prepares the request for the upstream as Envoy's
// RouteEntry::finalizeRequestHeaders does: header mutations, then the
// weighted cluster's and the route's host rewrites, then the path
// rewrite. With originalPath, a rewritten request keeps its path in
// x-envoy-original-path.
func (r *Route) FinalizeRequest(x *filters.Exchange, wc *WeightedCluster, originalPath bool) {
	r.ApplyRequestHeaders(x, wc)
	orig := x.Request.Authority
	changed := false
	if wc != nil && wc.HostRewriteLiteral != "" {
		x.Request.Authority, changed = wc.HostRewriteLiteral, true
	}
	if h, ok := r.RewriteHost(x); ok {
		x.Request.Authority, changed = h, true
	}
	if changed && r.Forward != nil && r.Forward.AppendXForwardedHost && orig != "" {
		x.Request.Header.Add("X-Forwarded-Host", orig)
	}
	if p, ok := r.RewritePath(x.Request.Path); ok {
		if originalPath {
			x.Request.Header.Set("X-Envoy-Original-Path", x.Request.Path)
		}
		x.Request.Path = p
	}
}

// compileRoute compiles one route; errors start with the field path
// relative to the route.
func compileRoute(rt *routev3.Route, vh *VirtualHost, maxBody uint32) (*Route, error) {
	r := &Route{name: rt.GetName(), vhost: vh, cfg: rt, Metadata: rt.GetMetadata()}
	var err error
	if r.m, err = compileRouteMatch(rt.GetMatch()); err != nil {
		return nil, err
	}
	switch a := rt.GetAction().(type) {
	case *routev3.Route_Route:
		if r.Forward, err = compileForward(a.Route, r, vh.Retry, vh.Mirrors); err != nil {
			return nil, err
		}
	case *routev3.Route_Redirect:
		if r.Redirect, err = compileRedirect(a.Redirect); err != nil {
			return nil, err
		}
	case *routev3.Route_DirectResponse:
		if r.Direct, err = compileDirect(a.DirectResponse, maxBody); err != nil {
			return nil, err
		}
	case *routev3.Route_NonForwardingAction:
		r.NonForwarding = true
	case *routev3.Route_FilterAction:
		return nil, errors.New("filter_action: filter actions are not supported")
	default:
		return nil, errors.New("action: one of route, redirect, direct_response or non_forwarding_action is required")
	}
	if len(rt.GetRouteSpecifiers()) > 0 {
		return nil, errors.New("route_specifiers: not supported")
	}
	r.Operation = rt.GetDecorator().GetOperation()
	if r.reqHeaders, err = compileHeaderMutation(rt.GetRequestHeadersToAdd(), rt.GetRequestHeadersToRemove(),
		"request_headers_to_add", "request_headers_to_remove"); err != nil {
		return nil, err
	}
	if r.respHeaders, err = compileHeaderMutation(rt.GetResponseHeadersToAdd(), rt.GetResponseHeadersToRemove(),
		"response_headers_to_add", "response_headers_to_remove"); err != nil {
		return nil, err
	}
	if r.perFilter, err = compilePerFilter(rt.GetTypedPerFilterConfig(), "typed_per_filter_config"); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Route) String() string {
	return fmt.Sprintf("route %q of virtual host %q", r.name, r.vhost.name)
}
