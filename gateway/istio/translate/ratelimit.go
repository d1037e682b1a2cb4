package translate

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	ratelimitconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/ratelimit/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/gateway/istio"
)

// The filters a RateLimitPolicy adds, under Envoy's names, and the
// defaults of the translation.
const (
	localRateLimitFilter = "envoy.filters.http.local_ratelimit"
	rateLimitFilter      = "envoy.filters.http.ratelimit"
	localRateLimitPrefix = "http_local_rate_limiter"
	defaultRateLimitDom  = "waygate"
	// Descriptor keys of the entries every rule starts with.
	ruleKey       = "waygate_rule"
	pathPrefixKey = "path_prefix"
	// maxLocalKeys bounds the per-value buckets of one local rule in
	// one gateway (client addresses, header values).
	maxLocalKeys = 65536
)

// rateLimitPolicies are the RateLimitPolicies that apply to this proxy,
// by namespace and name: those whose selector matches its labels, or
// that name a Gateway whose selector does.
func (t *translator) rateLimitPolicies() []*istio.RateLimitPolicy {
	var out []*istio.RateLimitPolicy
	for _, p := range t.cfg.RateLimitPolicies {
		if p != nil && t.rateLimitPolicyApplies(p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *istio.RateLimitPolicy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func (t *translator) rateLimitPolicyApplies(p *istio.RateLimitPolicy) bool {
	if !labelsSubset(p.Spec.Selector, t.proxy.Labels) {
		return false
	}
	if len(p.Spec.Gateways) == 0 {
		return true
	}
	for _, ref := range p.Spec.Gateways {
		ns, name, found := strings.Cut(ref, "/")
		if !found {
			ns, name = p.Namespace, ref
		}
		for _, g := range t.cfg.Gateways {
			if g != nil && g.Namespace == ns && g.Name == name && labelsSubset(g.Spec.Selector, t.proxy.Labels) {
				return true
			}
		}
	}
	return false
}

func rateLimitKey(p *istio.RateLimitPolicy) istio.Key {
	return istio.Key{Kind: "RateLimitPolicy", Namespace: p.Namespace, Name: p.Name}
}

// ruleID is the value of a rule's first descriptor entry, unique across
// policies.
func ruleID(p *istio.RateLimitPolicy, i int) string {
	return p.Namespace + "/" + p.Name + "/" + p.Spec.Rules[i].ID(i)
}

// globalService is the rate limit service the filter asks: the first
// policy's (by namespace and name) with global rules. One listener
// filter talks to one service, so a policy naming another is warned
// about and its global rules left out.
type globalService struct {
	policy  *istio.RateLimitPolicy
	cluster string
	domain  string
}

func (t *translator) globalService(ps []*istio.RateLimitPolicy) *globalService {
	var g *globalService
	for _, p := range ps {
		if !hasGlobal(p) {
			continue
		}
		dom := cmp.Or(p.Spec.Domain, defaultRateLimitDom)
		if g == nil {
			g = &globalService{policy: p, cluster: t.rateLimitClusterName(p.Spec.RateLimitService), domain: dom}
			continue
		}
		if p.Spec.RateLimitService != g.policy.Spec.RateLimitService || dom != g.domain {
			t.warn(rateLimitKey(p), "spec.rateLimitService", "a gateway asks one rate limit service: %s (domain %s) from %s wins, this policy's global rules are left out",
				g.policy.Spec.RateLimitService, g.domain, rateLimitKey(g.policy))
		}
	}
	return g
}

func hasGlobal(p *istio.RateLimitPolicy) bool {
	for _, r := range p.Spec.Rules {
		if r.Global != nil {
			return true
		}
	}
	return false
}

// rateLimitHTTPFilters are the listener's rate limit filters: an empty
// local_ratelimit (routes carry their buckets) when a policy has local
// rules, and a ratelimit filter asking the service when one has global
// rules.
func (t *translator) rateLimitHTTPFilters() []*hcmv3.HttpFilter {
	ps := t.rateLimitPolicies()
	var out []*hcmv3.HttpFilter
	local := false
	for _, p := range ps {
		for _, r := range p.Spec.Rules {
			local = local || r.Local != nil
		}
	}
	if local {
		out = append(out, &hcmv3.HttpFilter{Name: localRateLimitFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{
			TypedConfig: mustAny(&localrlv3.LocalRateLimit{StatPrefix: localRateLimitPrefix})}})
	}
	if g := t.globalService(ps); g != nil {
		cfg := &rlv3.RateLimit{
			Domain:                  g.domain,
			FailureModeDeny:         g.policy.Spec.FailureModeDeny,
			EnableXRatelimitHeaders: rlv3.RateLimit_DRAFT_VERSION_03,
			RateLimitService: &ratelimitconfv3.RateLimitServiceConfig{
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: g.cluster}}},
			},
		}
		if d, err := time.ParseDuration(g.policy.Spec.Timeout); err == nil && d > 0 {
			cfg.Timeout = durationpb.New(d)
		}
		out = append(out, &hcmv3.HttpFilter{Name: rateLimitFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(cfg)}})
	}
	return out
}

// withRateLimitFilters places the rate limit filters where istiod's
// EnvoyFilter patches put them: after jwt_authn and rbac, before fault,
// so a request is authenticated (its claims readable) and authorized
// before it is counted.
func withRateLimitFilters(chain, rl []*hcmv3.HttpFilter) []*hcmv3.HttpFilter {
	if len(rl) == 0 {
		return chain
	}
	at := len(chain) - 1 // before the router at worst
	for i, f := range chain {
		if f.GetName() == faultFilter {
			at = i
			break
		}
	}
	out := make([]*hcmv3.HttpFilter, 0, len(chain)+len(rl))
	out = append(out, chain[:at]...)
	out = append(out, rl...)
	return append(out, chain[at:]...)
}

// applyRateLimits gives the routes of the virtual hosts each policy
// selects their rate limits: a local_ratelimit per-route config with one
// descriptor (and token bucket) per local rule, and route rate_limits
// for the global rules. It adds the service's cluster when the registry
// has none.
func (t *translator) applyRateLimits(res *Resources) {
	ps := t.rateLimitPolicies()
	if len(ps) == 0 {
		return
	}
	g := t.globalService(ps)
	for _, rc := range res.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			var local *localrlv3.LocalRateLimit
			var global []*routev3.RateLimit
			for _, p := range ps {
				if !hostsSelect(p.Spec.Hosts, vh.GetDomains()) {
					continue
				}
				for i := range p.Spec.Rules {
					r := &p.Spec.Rules[i]
					switch {
					case r.Local != nil:
						if local == nil {
							local = &localrlv3.LocalRateLimit{
								StatPrefix:              localRateLimitPrefix,
								FilterEnabled:           allRequests(),
								FilterEnforced:          allRequests(),
								EnableXRatelimitHeaders: commonrlv3.XRateLimitHeadersRFCVersion_DRAFT_VERSION_03,
								MaxDynamicDescriptors:   wrapperspb.UInt32(maxLocalKeys),
							}
						}
						t.addLocalRule(local, p, i)
					case r.Global != nil && g != nil && g.policy.Spec.RateLimitService == p.Spec.RateLimitService:
						global = append(global, &routev3.RateLimit{Actions: ruleActions(p, i)})
					}
				}
			}
			if local == nil && len(global) == 0 {
				continue
			}
			var perRoute *anypb.Any
			if local != nil {
				perRoute = mustAny(local)
			}
			for _, rt := range vh.GetRoutes() {
				if perRoute != nil {
					if rt.TypedPerFilterConfig == nil {
						rt.TypedPerFilterConfig = map[string]*anypb.Any{}
					}
					rt.TypedPerFilterConfig[localRateLimitFilter] = perRoute
				}
				if a := rt.GetRoute(); a != nil && len(global) > 0 {
					a.RateLimits = append(a.RateLimits, global...)
				}
			}
		}
	}
	if g != nil {
		if c := t.rateLimitCluster(g.policy); c != nil && !slices.ContainsFunc(res.Clusters, func(have *clusterv3.Cluster) bool { return have.GetName() == c.GetName() }) {
			res.Clusters = append(res.Clusters, c)
		}
	}
}

// addLocalRule adds rule i's descriptor and actions to a route's local
// config: the descriptor's last entry has no value, so every client
// address (header value, path, claim) gets its own token bucket.
func (t *translator) addLocalRule(c *localrlv3.LocalRateLimit, p *istio.RateLimitPolicy, i int) {
	r := &p.Spec.Rules[i]
	every, err := r.Local.Interval()
	if err != nil {
		t.warn(rateLimitKey(p), fmt.Sprintf("spec.rules[%d].local.per", i), "%v; the rule is left out", err)
		return
	}
	d := &commonrlv3.LocalRateLimitDescriptor{TokenBucket: &typev3.TokenBucket{
		MaxTokens: r.Local.Requests, TokensPerFill: wrapperspb.UInt32(r.Local.Requests), FillInterval: durationpb.New(every),
	}}
	for _, e := range ruleEntries(p, i) {
		d.Entries = append(d.Entries, &commonrlv3.RateLimitDescriptor_Entry{Key: e[0], Value: e[1]})
	}
	c.Descriptors = append(c.Descriptors, d)
	c.RateLimits = append(c.RateLimits, &routev3.RateLimit{Actions: ruleActions(p, i)})
}

// ruleEntries are the descriptor entries rule i produces, with "" for
// the value that varies per request.
func ruleEntries(p *istio.RateLimitPolicy, i int) [][2]string {
	out := [][2]string{{ruleKey, ruleID(p, i)}}
	if m := p.Spec.Match; m != nil && m.PathPrefix != "" {
		out = append(out, [2]string{pathPrefixKey, m.PathPrefix})
	}
	if k := byKey(p.Spec.Rules[i].By); k != "" {
		out = append(out, [2]string{k, ""})
	}
	return out
}

// byKey is the descriptor key of what a rule counts by.
func byKey(by string) string {
	switch by {
	case "clientIP":
		return "remote_address"
	case "header":
		return "header"
	case "path":
		return "path"
	case "jwtClaim":
		return "jwt_claim"
	}
	return ""
}

// ruleActions are the route rate limit actions producing rule i's
// descriptor: the rule's name, the path prefix when the policy has one
// (a request outside it yields no descriptor), and the key.
func ruleActions(p *istio.RateLimitPolicy, i int) []*routev3.RateLimit_Action {
	r := &p.Spec.Rules[i]
	acts := []*routev3.RateLimit_Action{{ActionSpecifier: &routev3.RateLimit_Action_GenericKey_{
		GenericKey: &routev3.RateLimit_Action_GenericKey{DescriptorKey: ruleKey, DescriptorValue: ruleID(p, i)}}}}
	if m := p.Spec.Match; m != nil && m.PathPrefix != "" {
		acts = append(acts, &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_HeaderValueMatch_{
			HeaderValueMatch: &routev3.RateLimit_Action_HeaderValueMatch{
				DescriptorKey: pathPrefixKey, DescriptorValue: m.PathPrefix,
				Headers: []*routev3.HeaderMatcher{{Name: ":path", HeaderMatchSpecifier: &routev3.HeaderMatcher_PrefixMatch{PrefixMatch: m.PathPrefix}}},
			}}})
	}
	switch r.By {
	case "clientIP":
		acts = append(acts, &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RemoteAddress_{RemoteAddress: &routev3.RateLimit_Action_RemoteAddress{}}})
	case "header":
		acts = append(acts, requestHeaderAction(r.Header, "header"))
	case "path":
		acts = append(acts, requestHeaderAction(":path", "path"))
	case "jwtClaim":
		// jwt_authn writes the validated payload under "payload"
		// (requestauthn.go); a request without the claim is not
		// counted by this rule.
		acts = append(acts, &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_Metadata{Metadata: &routev3.RateLimit_Action_MetaData{
			DescriptorKey: "jwt_claim",
			MetadataKey: &metadatav3.MetadataKey{Key: jwtFilterName, Path: []*metadatav3.MetadataKey_PathSegment{
				{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: jwtPayloadKey}},
				{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: r.Claim}},
			}},
		}}})
	}
	return acts
}

func requestHeaderAction(header, key string) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{
		RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{HeaderName: header, DescriptorKey: key}}}
}

func allRequests() *corev3.RuntimeFractionalPercent {
	return &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}}
}

// hostsSelect reports whether a policy's hosts select a virtual host
// with domains: no hosts select all; otherwise a domain (without port)
// must equal a host or fall under a *.suffix host, or be "*".
func hostsSelect(hosts, domains []string) bool {
	if len(hosts) == 0 {
		return true
	}
	for _, d := range domains {
		if h, _, err := net.SplitHostPort(d); err == nil {
			d = h
		}
		for _, h := range hosts {
			switch {
			case h == "*", d == "*", strings.EqualFold(h, d):
				return true
			case strings.HasPrefix(h, "*.") && strings.HasSuffix(strings.ToLower(d), strings.ToLower(h[1:])):
				return true
			}
		}
	}
	return false
}

// rateLimitClusterName names the service's cluster
// outbound|<port>||<host>, as istiod names a service port.
func (t *translator) rateLimitClusterName(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil {
		return "outbound|0||" + addr
	}
	return clusterName(uint32(n), "", host)
}

// rateLimitCluster is the service's cluster, HTTP/2 for gRPC, unless
// the registry already has the service port (then its cluster is used).
func (t *translator) rateLimitCluster(p *istio.RateLimitPolicy) *clusterv3.Cluster {
	host, port, err := net.SplitHostPort(p.Spec.RateLimitService)
	n, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil {
		t.warn(rateLimitKey(p), "spec.rateLimitService", "%q is not host:port; global rules are left out", p.Spec.RateLimitService)
		return nil
	}
	if svc := t.registry.lookup(host, p.Namespace); svc != nil && svc.hasPort(uint32(n)) {
		return nil
	}
	name := clusterName(uint32(n), "", host)
	c := &clusterv3.Cluster{
		Name:           name,
		ConnectTimeout: defaultConnectTimeout,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(n)},
				}}},
			}}}},
		}}},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(&httpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
				}},
			}),
		},
	}
	if net.ParseIP(host) != nil {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	} else {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		c.DnsLookupFamily = clusterv3.Cluster_V4_ONLY
	}
	return c
}
