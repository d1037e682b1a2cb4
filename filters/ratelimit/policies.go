package ratelimit

import (
	"log/slog"
	"sync"
	"sync/atomic"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/router"
)

// policyCache holds the compiled rate_limits of the routes and virtual
// hosts requests went through. The router keeps rate_limits as received
// (Route.Config), so each list is compiled on first use and kept, keyed
// by the proto it came from: the key keeps that proto alive, so a
// pointer is never reused for another route while it is cached. The
// cache is dropped whole when it grows past maxPolicies, which bounds
// what route table pushes leave behind.
type policyCache struct {
	m sync.Map // *routev3.Route or *routev3.VirtualHost -> []rateLimit
	n atomic.Int64
}

const maxPolicies = 4096

// compiled returns the compiled form of rls, keyed by owner. A list that
// does not compile counts as empty, and is logged once.
func (c *policyCache) compiled(owner any, rls []*routev3.RateLimit, field string, log *slog.Logger) []rateLimit {
	if len(rls) == 0 {
		return nil
	}
	if v, ok := c.m.Load(owner); ok {
		return v.([]rateLimit)
	}
	out, err := compileRateLimits(rls, field)
	if err != nil {
		if log != nil {
			log.Warn("rate_limits ignored", "err", err)
		}
		out = nil
	}
	if c.n.Add(1) > maxPolicies {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(owner, out)
	return out
}

// routeLimits are the rate limits of the matched route and of its
// virtual host. Routes the router did not compile (tests) have none.
func (c *policyCache) routeLimits(x *filters.Exchange) (route, vhost []rateLimit) {
	rt, _ := router.Resolve(x.MatchedRoute())
	if rt == nil {
		return nil, nil
	}
	if cfg := rt.Config(); cfg != nil {
		route = c.compiled(cfg, cfg.GetRoute().GetRateLimits(), "route.rate_limits", x.Log)
	}
	if vh := rt.VHost(); vh != nil {
		if cfg := vh.Config(); cfg != nil {
			vhost = c.compiled(cfg, cfg.GetRateLimits(), "virtual_host.rate_limits", x.Log)
		}
	}
	return route, vhost
}

// includeVhost says whether the virtual host's rate limits apply, after
// Envoy's VhRateLimitsOptions: OVERRIDE (the default) uses them only
// when the route has none, INCLUDE always, IGNORE never. The route's
// deprecated include_vh_rate_limits forces INCLUDE.
func includeVhost(opt int32, x *filters.Exchange, routeHas bool) bool {
	if rt, _ := router.Resolve(x.MatchedRoute()); rt != nil && rt.Config().GetRoute().GetIncludeVhRateLimits().GetValue() {
		return true
	}
	switch opt {
	case 1: // INCLUDE
		return true
	case 2: // IGNORE
		return false
	}
	return !routeHas
}
