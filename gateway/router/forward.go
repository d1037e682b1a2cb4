package router

import (
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/filters"
)

// DefaultTimeout is Envoy's route timeout when a route sets none.
const DefaultTimeout = 15 * time.Second

// Forward is a compiled RouteAction: how a request that matched a
// forwarding route reaches its upstream. Its fields are read-only after
// Compile.
type Forward struct {
	// ClusterName is set for a single-cluster route.
	ClusterName string
	// ClusterHeader is the canonical name of the request header naming the
	// cluster, for cluster_header routes.
	ClusterHeader string
	// Weighted lists the weighted clusters in config order; see Pick.
	Weighted []*WeightedCluster
	// ClusterNotFoundCode is the status when the cluster does not exist:
	// 503 (the default), 404 or 500.
	ClusterNotFoundCode int
	// MetadataMatch selects an endpoint subset (DestinationRule subsets
	// when the cluster uses subset load balancing); nil for all endpoints.
	MetadataMatch *corev3.Metadata

	// PrefixRewrite replaces the matched prefix (or the whole path of a
	// path or regex route); hasPrefixRewrite tells "" from unset.
	PrefixRewrite    string
	hasPrefixRewrite bool
	// RegexRewrite rewrites the path (without query).
	RegexRewrite *Rewrite

	// HostRewriteLiteral replaces the authority.
	HostRewriteLiteral string
	// AutoHostRewrite asks the router to set the authority to the chosen
	// upstream host's hostname.
	AutoHostRewrite bool
	// HostRewriteHeader is the canonical name of a request header whose
	// value becomes the authority.
	HostRewriteHeader string
	// HostRewritePathRegex rewrites the path into the new authority.
	HostRewritePathRegex *Rewrite
	hostRewriteFormat    *format
	// AppendXForwardedHost appends the original authority to
	// x-forwarded-host when the host is rewritten.
	AppendXForwardedHost bool

	// Timeout is the whole-request timeout, DefaultTimeout when unset and
	// 0 when disabled.
	Timeout time.Duration
	// TimeoutMs is Timeout in milliseconds as the one value of an
	// x-envoy-expected-rq-timeout-ms header, nil when Timeout is 0. The
	// router puts this very slice in requests: it is read only.
	TimeoutMs []string
	// IdleTimeout is nil when the route sets none.
	IdleTimeout *time.Duration
	// MaxGrpcTimeout and GrpcTimeoutOffset are nil when unset; a zero
	// MaxGrpcTimeout means the grpc-timeout header is honored unbounded.
	MaxGrpcTimeout    *time.Duration
	GrpcTimeoutOffset *time.Duration
	// MaxStreamDuration is nil when unset.
	MaxStreamDuration *MaxStreamDuration

	// Retry is the route's retry policy, else the virtual host's; nil for
	// none.
	Retry *RetryPolicy
	// Mirrors are the most specific non-empty request_mirror_policies
	// (route, else virtual host, else route configuration).
	Mirrors []Mirror
	// Upgrades maps upgrade types (websocket, CONNECT) to whether they
	// are enabled on this route.
	Upgrades map[string]bool
	// Priority is the cluster priority, "DEFAULT" or "HIGH".
	Priority string

	hashPolicies []hashPolicy
	totalWeight  uint64
	weightHeader string // canonical, when random_value_specifier is header_name
}

// MaxStreamDuration is a compiled RouteAction.MaxStreamDuration; nil
// durations are unset.
type MaxStreamDuration struct {
	Max                     *time.Duration
	GrpcTimeoutHeaderMax    *time.Duration
	GrpcTimeoutHeaderOffset *time.Duration
}

// Mirror is a compiled request mirror policy.
type Mirror struct {
	Cluster string
	// ClusterHeader is the canonical request header naming the cluster.
	ClusterHeader                 string
	TraceSampled                  *bool
	DisableShadowHostSuffixAppend bool
	HostRewriteLiteral            string
	fraction                      *fraction
}

// Sampled reports whether this request is mirrored, given the request's
// random value.
func (m *Mirror) Sampled(random uint64) bool {
	return m.fraction == nil || m.fraction.sample(random)
}

// HasHashPolicy reports whether the route sets any hash policy.
func (f *Forward) HasHashPolicy() bool { return len(f.hashPolicies) > 0 }

func durPtr(d *durationpb.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := d.AsDuration()
	return &v
}

// compileForward compiles a RouteAction. The vhost and config levels
// supply retry and mirror defaults.
func compileForward(a *routev3.RouteAction, r *Route, vhRetry *RetryPolicy, vhMirrors []Mirror) (*Forward, error) {
	f := &Forward{ClusterNotFoundCode: 503, Timeout: DefaultTimeout, MetadataMatch: a.GetMetadataMatch()}
	switch c := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		if c.Cluster == "" {
			return nil, errors.New("route.cluster: must not be empty")
		}
		f.ClusterName = c.Cluster
	case *routev3.RouteAction_ClusterHeader:
		if c.ClusterHeader == "" {
			return nil, errors.New("route.cluster_header: must not be empty")
		}
		f.ClusterHeader = textproto.CanonicalMIMEHeaderKey(c.ClusterHeader)
	case *routev3.RouteAction_WeightedClusters:
		if err := f.compileWeighted(c.WeightedClusters, r); err != nil {
			return nil, fmt.Errorf("route.weighted_clusters.%w", err)
		}
	case *routev3.RouteAction_ClusterSpecifierPlugin, *routev3.RouteAction_InlineClusterSpecifierPlugin:
		return nil, errors.New("route: cluster specifier plugins are not supported; use cluster, cluster_header or weighted_clusters")
	default:
		return nil, errors.New("route: one of cluster, cluster_header or weighted_clusters is required")
	}
	if a.GetClusterNotFoundResponseCode() == routev3.RouteAction_NOT_FOUND {
		f.ClusterNotFoundCode = 404
	} else if a.GetClusterNotFoundResponseCode() == routev3.RouteAction_INTERNAL_SERVER_ERROR {
		f.ClusterNotFoundCode = 500
	}

	if a.GetPathRewritePolicy() != nil {
		return nil, errors.New("route.path_rewrite_policy: URI template rewrites are not supported; use prefix_rewrite or regex_rewrite")
	}
	if a.GetPathRewrite() != "" {
		return nil, errors.New("route.path_rewrite: substitution-format path rewrites are not supported; use prefix_rewrite or regex_rewrite")
	}
	f.PrefixRewrite = a.GetPrefixRewrite()
	f.hasPrefixRewrite = a.GetPrefixRewrite() != ""
	if a.GetRegexRewrite() != nil {
		if f.hasPrefixRewrite {
			return nil, errors.New("route.regex_rewrite: only one of prefix_rewrite and regex_rewrite may be set")
		}
		rw, err := compileRewrite(a.GetRegexRewrite())
		if err != nil {
			return nil, fmt.Errorf("route.regex_rewrite.%w", err)
		}
		f.RegexRewrite = rw
	}

	switch h := a.GetHostRewriteSpecifier().(type) {
	case *routev3.RouteAction_HostRewriteLiteral:
		f.HostRewriteLiteral = h.HostRewriteLiteral
	case *routev3.RouteAction_AutoHostRewrite:
		f.AutoHostRewrite = h.AutoHostRewrite.GetValue()
	case *routev3.RouteAction_HostRewriteHeader:
		f.HostRewriteHeader = textproto.CanonicalMIMEHeaderKey(h.HostRewriteHeader)
	case *routev3.RouteAction_HostRewritePathRegex:
		rw, err := compileRewrite(h.HostRewritePathRegex)
		if err != nil {
			return nil, fmt.Errorf("route.host_rewrite_path_regex.%w", err)
		}
		f.HostRewritePathRegex = rw
	case *routev3.RouteAction_HostRewrite:
		hf, err := compileFormat(h.HostRewrite)
		if err != nil {
			return nil, fmt.Errorf("route.host_rewrite: %w", err)
		}
		f.hostRewriteFormat = &hf
	}
	f.AppendXForwardedHost = a.GetAppendXForwardedHost()

	if a.GetTimeout() != nil {
		f.Timeout = a.GetTimeout().AsDuration()
	}
	if f.Timeout > 0 {
		f.TimeoutMs = []string{strconv.FormatInt(f.Timeout.Milliseconds(), 10)}
	}
	f.IdleTimeout = durPtr(a.GetIdleTimeout())
	f.MaxGrpcTimeout = durPtr(a.GetMaxGrpcTimeout())
	f.GrpcTimeoutOffset = durPtr(a.GetGrpcTimeoutOffset())
	if m := a.GetMaxStreamDuration(); m != nil {
		f.MaxStreamDuration = &MaxStreamDuration{
			Max:                     durPtr(m.GetMaxStreamDuration()),
			GrpcTimeoutHeaderMax:    durPtr(m.GetGrpcTimeoutHeaderMax()),
			GrpcTimeoutHeaderOffset: durPtr(m.GetGrpcTimeoutHeaderOffset()),
		}
	}

	if a.GetRetryPolicyTypedConfig() != nil {
		return nil, errors.New("route.retry_policy_typed_config: retry policy extensions are not supported; use retry_policy")
	}
	if a.GetRetryPolicy() != nil {
		rp, err := compileRetryPolicy(a.GetRetryPolicy())
		if err != nil {
			return nil, fmt.Errorf("route.retry_policy.%w", err)
		}
		f.Retry = rp
	} else {
		f.Retry = vhRetry
	}

	if len(a.GetRequestMirrorPolicies()) > 0 {
		ms, err := compileMirrors(a.GetRequestMirrorPolicies(), "route.request_mirror_policies")
		if err != nil {
			return nil, err
		}
		f.Mirrors = ms
	} else {
		f.Mirrors = vhMirrors
	}

	for i, hp := range a.GetHashPolicy() {
		p, err := compileHashPolicy(hp)
		if err != nil {
			return nil, fmt.Errorf("route.hash_policy[%d].%w", i, err)
		}
		f.hashPolicies = append(f.hashPolicies, p)
	}
	for _, u := range a.GetUpgradeConfigs() {
		if f.Upgrades == nil {
			f.Upgrades = make(map[string]bool)
		}
		f.Upgrades[u.GetUpgradeType()] = u.GetEnabled() == nil || u.GetEnabled().GetValue()
	}
	f.Priority = a.GetPriority().String()
	return f, nil
}

func compileMirrors(ps []*routev3.RouteAction_RequestMirrorPolicy, field string) ([]Mirror, error) {
	var out []Mirror
	for i, p := range ps {
		m := Mirror{
			Cluster:                       p.GetCluster(),
			DisableShadowHostSuffixAppend: p.GetDisableShadowHostSuffixAppend(),
			HostRewriteLiteral:            p.GetHostRewriteLiteral(),
		}
		if p.GetClusterHeader() != "" {
			m.ClusterHeader = textproto.CanonicalMIMEHeaderKey(p.GetClusterHeader())
		}
		if (m.Cluster == "") == (m.ClusterHeader == "") {
			return nil, fmt.Errorf("%s[%d]: exactly one of cluster and cluster_header is required", field, i)
		}
		if p.GetTraceSampled() != nil {
			v := p.GetTraceSampled().GetValue()
			m.TraceSampled = &v
		}
		if p.GetRuntimeFraction() != nil {
			fr, err := compileFraction(p.GetRuntimeFraction())
			if err != nil {
				return nil, fmt.Errorf("%s[%d].runtime_fraction: %w", field, i, err)
			}
			m.fraction = fr
		}
		out = append(out, m)
	}
	return out, nil
}

// MirrorCluster is the cluster one mirror sends a copy of req to, "" when
// its cluster_header is missing.
func (m *Mirror) MirrorCluster(req *filters.Request) string {
	if m.ClusterHeader != "" {
		return req.Header.Get(m.ClusterHeader)
	}
	return m.Cluster
}
