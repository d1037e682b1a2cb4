package router

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/textproto"
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
)

// Table is a compiled RouteConfiguration. It is immutable and safe for
// concurrent use.
type Table struct {
	name    string
	vhosts  []*VirtualHost
	domains domainIndex

	ignorePort       bool
	vhostHeader      string // canonical
	mostSpecificWins bool
	needsRandom      bool
	validateClusters bool
	internalOnly     []string
	clusters         []string

	reqHeaders  *headerMutation
	respHeaders *headerMutation
	perFilter   perFilter
	cfg         *routev3.RouteConfiguration
}

// Compile validates rc and compiles it into a Table. Errors name the
// field path, such as
// `virtual_hosts[0] "*:8080": routes[3].match.safe_regex: error parsing regexp: ...`.
func Compile(rc *routev3.RouteConfiguration) (*Table, error) {
	if rc == nil {
		return nil, errors.New("route configuration must not be nil")
	}
	if rc.GetVhds() != nil {
		return nil, errors.New("vhds: on-demand virtual hosts are not supported; send virtual_hosts inline")
	}
	if len(rc.GetClusterSpecifierPlugins()) > 0 {
		return nil, errors.New("cluster_specifier_plugins: not supported")
	}
	if len(rc.GetRouteSpecifiers()) > 0 {
		return nil, errors.New("route_specifiers: not supported")
	}
	t := &Table{
		name:             rc.GetName(),
		ignorePort:       rc.GetIgnorePortInHostMatching(),
		mostSpecificWins: rc.GetMostSpecificHeaderMutationsWins(),
		validateClusters: rc.GetValidateClusters().GetValue(),
		internalOnly:     rc.GetInternalOnlyHeaders(),
		cfg:              rc,
	}
	if rc.GetVhostHeader() != "" {
		t.vhostHeader = textproto.CanonicalMIMEHeaderKey(rc.GetVhostHeader())
	}
	maxBody := uint32(DefaultMaxDirectResponseBody)
	if m := rc.GetMaxDirectResponseBodySizeBytes(); m != nil {
		maxBody = m.GetValue()
	}
	var err error
	if t.reqHeaders, err = compileHeaderMutation(rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove(),
		"request_headers_to_add", "request_headers_to_remove"); err != nil {
		return nil, err
	}
	if t.respHeaders, err = compileHeaderMutation(rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove(),
		"response_headers_to_add", "response_headers_to_remove"); err != nil {
		return nil, err
	}
	if t.perFilter, err = compilePerFilter(rc.GetTypedPerFilterConfig(), "typed_per_filter_config"); err != nil {
		return nil, err
	}
	mirrors, err := compileMirrors(rc.GetRequestMirrorPolicies(), "request_mirror_policies")
	if err != nil {
		return nil, err
	}
	clusters := map[string]bool{}
	for i, v := range rc.GetVirtualHosts() {
		vh, err := compileVirtualHost(v, t, maxBody, mirrors)
		if err != nil {
			return nil, fmt.Errorf("virtual_hosts[%d] %q: %w", i, v.GetName(), err)
		}
		for j, d := range v.GetDomains() {
			if err := t.domains.add(d, vh); err != nil {
				return nil, fmt.Errorf("virtual_hosts[%d] %q: domains[%d]: %w", i, v.GetName(), j, err)
			}
		}
		for _, r := range vh.routes {
			if r.m.fraction != nil {
				t.needsRandom = true
			}
			r.collectClusters(clusters)
		}
		t.vhosts = append(t.vhosts, vh)
	}
	for c := range clusters {
		t.clusters = append(t.clusters, c)
	}
	sort.Strings(t.clusters)
	return t, nil
}

func (r *Route) collectClusters(into map[string]bool) {
	f := r.Forward
	if f == nil {
		return
	}
	if f.ClusterName != "" {
		into[f.ClusterName] = true
	}
	for _, w := range f.Weighted {
		if w.name != "" {
			into[w.name] = true
		}
	}
	for _, m := range f.Mirrors {
		if m.Cluster != "" {
			into[m.Cluster] = true
		}
	}
}

// Name is the route configuration's name (http.8080 from istiod).
func (t *Table) Name() string { return t.name }

// VirtualHosts are the virtual hosts in config order.
func (t *Table) VirtualHosts() []*VirtualHost { return t.vhosts }

// Clusters lists every cluster named statically by a route, weighted
// cluster or mirror policy, sorted, for validate_clusters and for warming.
func (t *Table) Clusters() []string { return t.clusters }

// ValidateClusters reports whether the config asks that every cluster in
// Clusters exist before the table is accepted.
func (t *Table) ValidateClusters() bool { return t.validateClusters }

// InternalOnlyHeaders are the headers the connection manager strips from
// external requests.
func (t *Table) InternalOnlyHeaders() []string { return t.internalOnly }

// Config is the route configuration as received. It must not be
// modified.
func (t *Table) Config() *routev3.RouteConfiguration { return t.cfg }

// PerFilterConfig returns the route configuration's own config for a
// filter, for requests that matched no virtual host.
func (t *Table) PerFilterConfig(name string) any { return t.perFilter[name] }

// Match selects the virtual host for the request's authority and returns
// the first route that matches, or nil. It draws the random value that
// runtime_fraction matches use only when some route has one.
func (t *Table) Match(req *filters.Request, conn *filters.Connection) *Route {
	return t.match(req, conn, nil, t.random())
}

func (t *Table) random() uint64 {
	if t.needsRandom {
		return rand.Uint64()
	}
	return 0
}

// MatchExchange matches the exchange's request, connection and dynamic
// metadata (the routes' dynamic_metadata conditions, such as Istio's
// JWT claim matches, read what jwt_authn wrote). It returns an untyped
// nil when no route matches, so that x.Route == nil holds, and has the
// shape Exchange.SetRouteMatcher takes for re-matching after
// ClearRouteCache.
//
// A route with weighted clusters is resolved to the pick, as Envoy picks
// when it selects the route: filters before the router then see the
// cluster the request goes to (Route.Cluster, a plugin's cluster_name).
func (t *Table) MatchExchange(x *filters.Exchange) filters.Route {
	var random uint64
	if t.needsRandom {
		random = x.Random()
	}
	r := t.match(&x.Request, &x.Downstream, x.Metadata, random)
	if r == nil {
		return nil
	}
	if f := r.Forward; f != nil && len(f.Weighted) > 0 {
		return f.Pick(&x.Request, x.Random())
	}
	return r
}

// MatchRandom is Match with the request's random value given, so that
// runtime_fraction matches are deterministic in tests and one random value
// serves a whole request, as in Envoy.
func (t *Table) MatchRandom(req *filters.Request, conn *filters.Connection, random uint64) *Route {
	return t.match(req, conn, nil, random)
}

func (t *Table) match(req *filters.Request, conn *filters.Connection, md map[string]map[string]any, random uint64) *Route {
	vh := t.VirtualHostFor(req)
	if vh == nil {
		return nil
	}
	return vh.match(req, conn, md, random)
}

// VirtualHostFor selects the virtual host for the request: by its
// authority (or vhost_header), with the port stripped first under
// ignore_port_in_host_matching.
func (t *Table) VirtualHostFor(req *filters.Request) *VirtualHost {
	if t.domains.onlyDefault() {
		return t.domains.dflt
	}
	host := req.Authority
	if t.vhostHeader != "" {
		host = req.Header.Get(t.vhostHeader)
	}
	if host == "" {
		return nil
	}
	if t.ignorePort {
		host = stripPort(host)
	}
	return t.domains.lookup(host)
}
