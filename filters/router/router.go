// Package router is the terminal HTTP filter,
// envoy.extensions.filters.http.router.v3.Router: it acts on the matched
// route (forward, redirect, direct response), sends the request to an
// endpoint of the route's cluster and streams the response back through
// the response filters.
//
// See https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter
package router

import (
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	"github.com/waygate/waygate/filters"
	"google.golang.org/protobuf/proto"
)

// TypeURL is the router's config type.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

func init() {
	filters.Register(TypeURL, build)
}

// config is the compiled Router proto.
type config struct {
	// suppressEnvoyHeaders drops the x-envoy-* headers the router would
	// add (expected timeout, upstream service time, attempt count).
	suppressEnvoyHeaders bool
	// respectExpectedTimeout uses x-envoy-expected-rq-timeout-ms from the
	// downstream instead of x-envoy-upstream-rq-timeout-ms.
	respectExpectedTimeout bool
	env                    filters.Env
}

func build(m proto.Message, env filters.Env) (filters.Factory, error) {
	c := m.(*routerv3.Router)
	cfg := &config{
		suppressEnvoyHeaders:   c.GetSuppressEnvoyHeaders(),
		respectExpectedTimeout: c.GetRespectExpectedRqTimeout(),
		env:                    env,
	}
	// The router keeps no per-stream state (everything lives in the
	// Exchange and on forward's stack), so one value serves every
	// stream and a request costs no allocation for it.
	f := &filter{cfg: cfg}
	return filters.FactoryFunc(func(*filters.Exchange) any { return f }), nil
}

// filter is the router of every stream of one chain. It must stay free
// of per-stream fields: see build.
type filter struct {
	cfg *config
}
