package jwt

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// TypeURL is the filter's config type, for http_filters entries.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"

// PerRouteTypeURL is the per-route config type, for
// typed_per_filter_config.
const PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"

// FilterName is the name the filter reads its per-route config under and
// the dynamic metadata namespace it writes verified payloads to: Envoy's
// conventional name, the one istiod uses and the rbac filter reads.
const FilterName = "envoy.filters.http.jwt_authn"

func init() {
	filters.Register(TypeURL, build)
	filters.RegisterRouteConfig(PerRouteTypeURL, buildRoute)
}

func build(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*jwtauthnv3.JwtAuthentication)
	if !ok {
		return nil, fmt.Errorf("jwt_authn: config is %T, want JwtAuthentication", cfg)
	}
	return New(pb, env)
}

// routeConfig is a compiled PerRouteConfig that names a requirement.
// A disabled one compiles to filters.Disabled, which the chain honors
// without calling the factory.
type routeConfig struct {
	requirement string
}

func buildRoute(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*jwtauthnv3.PerRouteConfig)
	if !ok {
		return nil, fmt.Errorf("jwt_authn: per-route config is %T, want PerRouteConfig", cfg)
	}
	switch pb.GetRequirementSpecifier().(type) {
	case *jwtauthnv3.PerRouteConfig_Disabled:
		if pb.GetDisabled() {
			return filters.Disabled{}, nil
		}
		return nil, errors.New("disabled: must be true when set")
	case *jwtauthnv3.PerRouteConfig_RequirementName:
		if pb.GetRequirementName() == "" {
			return nil, errors.New("requirement_name: must not be empty")
		}
		return &routeConfig{requirement: pb.GetRequirementName()}, nil
	}
	return nil, errors.New("requirement_specifier: one of disabled or requirement_name is required")
}

// Factory is a compiled JwtAuthentication. It owns the providers' remote
// key caches and their background refresh, which Close stops.
type Factory struct {
	providers map[string]*provider
	ordered   []*provider // by name, for lookups by issuer
	rules     []rule
	reqMap    map[string]verifier
	bypassCORS,
	strip bool
	now func() time.Time
	c   *counters
}

// counters are the filter's stats, named as Envoy's under the connection
// manager's scope: http.<stat_prefix>.jwt_authn.<name>.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/jwt_authn_filter#statistics
type counters struct {
	allowed, denied, corsBypassed, fetchOK, fetchFailed, cacheHit, cacheMiss filters.Counter
}

func newCounters(st filters.Stats, prefix string) *counters {
	c := func(name string) filters.Counter {
		if st == nil {
			return nopCounter{}
		}
		return st.Counter(prefix + name)
	}
	return &counters{
		allowed: c("allowed"), denied: c("denied"), corsBypassed: c("cors_preflight_bypassed"),
		fetchOK: c("jwks_fetch_success"), fetchFailed: c("jwks_fetch_failed"),
		cacheHit: c("jwt_cache_hit"), cacheMiss: c("jwt_cache_miss"),
	}
}

type nopCounter struct{}

func (nopCounter) Inc()         {}
func (nopCounter) Add(n uint64) {}

// options are knobs tests turn; production uses the zero value.
type options struct {
	// refetch overrides the least time between fetches triggered by a
	// failure or an unknown kid.
	refetch time.Duration
	now     func() time.Time
}

// New compiles the filter config. Errors name the field path. Remote key
// sets with async_fetch start fetching in the background at once; New
// never waits for them.
func New(pb *jwtauthnv3.JwtAuthentication, env filters.Env) (*Factory, error) {
	return newFactory(pb, env, options{})
}

func newFactory(pb *jwtauthnv3.JwtAuthentication, env filters.Env, opts options) (f *Factory, err error) {
	if pb.GetFilterStateRules() != nil {
		return nil, errors.New("filter_state_rules: not supported; use rules or requirement_map")
	}
	f = &Factory{
		providers:  map[string]*provider{},
		reqMap:     map[string]verifier{},
		bypassCORS: pb.GetBypassCorsPreflight(),
		strip:      pb.GetStripFailureResponse(),
		now:        time.Now,
		c:          newCounters(env.Stats, "jwt_authn."+pb.GetStatPrefix()),
	}
	if opts.now != nil {
		f.now = opts.now
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	names := make([]string, 0, len(pb.GetProviders()))
	for name := range pb.GetProviders() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, err := compileProvider(name, pb.GetProviders()[name], env, f.c, opts)
		if err != nil {
			return f, fmt.Errorf("providers[%q].%w", name, err)
		}
		f.providers[name] = p
		f.ordered = append(f.ordered, p)
	}
	for name, r := range pb.GetRequirementMap() {
		v, err := f.compileRequirement(r, nil)
		if err != nil {
			return f, fmt.Errorf("requirement_map[%q].%w", name, err)
		}
		f.reqMap[name] = v
	}
	for i, r := range pb.GetRules() {
		m, err := compileRouteMatch(r.GetMatch())
		if err != nil {
			return f, fmt.Errorf("rules[%d].match.%w", i, err)
		}
		ru := rule{match: m}
		switch t := r.GetRequirementType().(type) {
		case *jwtauthnv3.RequirementRule_Requires:
			if ru.v, err = f.compileRequirement(t.Requires, nil); err != nil {
				return f, fmt.Errorf("rules[%d].requires.%w", i, err)
			}
		case *jwtauthnv3.RequirementRule_RequirementName:
			v, ok := f.reqMap[t.RequirementName]
			if !ok {
				return f, fmt.Errorf("rules[%d].requirement_name: %q is not in requirement_map (%s)", i, t.RequirementName, f.requirementNames())
			}
			ru.v = v
		default:
			// A rule without a requirement matches and checks nothing,
			// which is how Envoy exempts a path from a later rule.
			ru.v = allowAll{}
		}
		f.rules = append(f.rules, ru)
	}
	return f, nil
}

// Close stops the background JWKS refresh of every remote provider.
func (f *Factory) Close() error {
	for _, p := range f.ordered {
		if p.remote != nil {
			p.remote.close()
		}
	}
	return nil
}

// byIssuer is the provider for a token found by allow_missing or
// allow_missing_or_failed: the first (by name) with the token's issuer,
// else the first without an issuer.
func (f *Factory) byIssuer(iss string) *provider {
	var anyIss *provider
	for _, p := range f.ordered {
		if p.issuer == iss {
			return p
		}
		if p.issuer == "" && anyIss == nil {
			anyIss = p
		}
	}
	return anyIss
}

func (f *Factory) names() string {
	out := make([]string, len(f.ordered))
	for i, p := range f.ordered {
		out[i] = p.name
	}
	return strings.Join(out, ", ")
}

func (f *Factory) requirementNames() string {
	out := make([]string, 0, len(f.reqMap))
	for n := range f.reqMap {
		out = append(out, n)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
