package router

import (
	"errors"
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
)

// VirtualHost is one compiled virtual host. Its fields are read-only
// after Compile.
type VirtualHost struct {
	name    string
	domains []string
	routes  []*Route
	index   *routeIndex
	table   *Table

	// RequireTLS is "NONE", "EXTERNAL_ONLY" or "ALL"; the connection
	// manager redirects plaintext requests to https when it is not NONE.
	RequireTLS string
	// IncludeRequestAttemptCount adds x-envoy-attempt-count to upstream
	// requests; IncludeAttemptCountInResponse adds it to responses.
	IncludeRequestAttemptCount    bool
	IncludeAttemptCountInResponse bool
	IncludeIsTimeoutRetryHeader   bool
	// Retry is the default retry policy of routes that set none.
	Retry *RetryPolicy
	// Mirrors are the default mirror policies of routes that set none.
	Mirrors []Mirror

	reqHeaders  *headerMutation
	respHeaders *headerMutation
	perFilter   perFilter
	cfg         *routev3.VirtualHost
}

// Name is the virtual host's name.
func (vh *VirtualHost) Name() string { return vh.name }

// Domains are the domains as configured.
func (vh *VirtualHost) Domains() []string { return vh.domains }

// Routes are the routes in match order.
func (vh *VirtualHost) Routes() []*Route { return vh.routes }

// Config is the virtual host as received. It must not be modified.
func (vh *VirtualHost) Config() *routev3.VirtualHost { return vh.cfg }

// PerFilterConfig returns the virtual host's config for the filter, else
// the route configuration's, for requests that matched no route.
func (vh *VirtualHost) PerFilterConfig(name string) any {
	if v, ok := vh.perFilter[name]; ok {
		return v
	}
	if v, ok := vh.table.perFilter[name]; ok {
		return v
	}
	return nil
}

// indexThreshold is the route count above which a virtual host indexes
// its routes; below it a linear scan is as fast as the index lookups.
const indexThreshold = 16

func compileVirtualHost(v *routev3.VirtualHost, t *Table, maxBody uint32, mirrors []Mirror) (*VirtualHost, error) {
	vh := &VirtualHost{
		name:                          v.GetName(),
		domains:                       v.GetDomains(),
		table:                         t,
		RequireTLS:                    v.GetRequireTls().String(),
		IncludeRequestAttemptCount:    v.GetIncludeRequestAttemptCount(),
		IncludeAttemptCountInResponse: v.GetIncludeAttemptCountInResponse(),
		IncludeIsTimeoutRetryHeader:   v.GetIncludeIsTimeoutRetryHeader(),
		Mirrors:                       mirrors,
		cfg:                           v,
	}
	if len(vh.domains) == 0 {
		return nil, errors.New("domains: at least one domain is required")
	}
	if v.GetMatcher() != nil {
		return nil, errors.New("matcher: matcher trees are not supported; use routes")
	}
	if v.GetRetryPolicyTypedConfig() != nil {
		return nil, errors.New("retry_policy_typed_config: retry policy extensions are not supported; use retry_policy")
	}
	var err error
	if vh.Retry, err = compileRetryPolicy(v.GetRetryPolicy()); err != nil {
		return nil, fmt.Errorf("retry_policy.%w", err)
	}
	if len(v.GetRequestMirrorPolicies()) > 0 {
		if vh.Mirrors, err = compileMirrors(v.GetRequestMirrorPolicies(), "request_mirror_policies"); err != nil {
			return nil, err
		}
	}
	if vh.reqHeaders, err = compileHeaderMutation(v.GetRequestHeadersToAdd(), v.GetRequestHeadersToRemove(),
		"request_headers_to_add", "request_headers_to_remove"); err != nil {
		return nil, err
	}
	if vh.respHeaders, err = compileHeaderMutation(v.GetResponseHeadersToAdd(), v.GetResponseHeadersToRemove(),
		"response_headers_to_add", "response_headers_to_remove"); err != nil {
		return nil, err
	}
	if vh.perFilter, err = compilePerFilter(v.GetTypedPerFilterConfig(), "typed_per_filter_config"); err != nil {
		return nil, err
	}
	vh.routes = make([]*Route, 0, len(v.GetRoutes()))
	for i, rt := range v.GetRoutes() {
		r, err := compileRoute(rt, vh, maxBody)
		if err != nil {
			return nil, fmt.Errorf("routes[%d].%w", i, err)
		}
		vh.routes = append(vh.routes, r)
	}
	if len(vh.routes) > indexThreshold {
		vh.index = buildIndex(vh.routes)
	}
	return vh, nil
}

// match returns the first route of the virtual host that matches.
func (vh *VirtualHost) match(req *filters.Request, conn *filters.Connection, md map[string]map[string]any, random uint64) *Route {
	path, query := splitPath(req.Path)
	if vh.index != nil {
		return vh.index.match(vh.routes, path, query, req, conn, md, random)
	}
	return matchLinear(vh.routes, path, query, req, conn, md, random)
}

func matchLinear(routes []*Route, path, query string, req *filters.Request, conn *filters.Connection, md map[string]map[string]any, random uint64) *Route {
	for _, r := range routes {
		if r.m.matchPath(path) && r.m.matchRest(req, conn, md, query, random) {
			return r
		}
	}
	return nil
}
