package ratelimit

import (
	"net/http"
	"net/netip"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/router"
)

// table compiles a route configuration with one virtual host for
// "example.com" holding routes, through the real router.
func table(t testing.TB, vhLimits []*routev3.RateLimit, routes ...*routev3.Route) *router.Table {
	t.Helper()
	tbl, err := router.Compile(&routev3.RouteConfiguration{
		Name: "http.8080",
		VirtualHosts: []*routev3.VirtualHost{{
			Name: "example", Domains: []string{"*"}, Routes: routes, RateLimits: vhLimits,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func prefixRoute(prefix, cluster string, limits ...*routev3.RateLimit) *routev3.Route {
	return &routev3.Route{
		Name:  prefix,
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			RateLimits:       limits,
		}},
	}
}

// exchange is a request from client, matched against tbl (when not nil).
func exchange(tbl *router.Table, client, path string, hdr ...string) *filters.Exchange {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	x := &filters.Exchange{
		Request:    filters.Request{Method: "GET", Scheme: "http", Authority: "example.com", Path: path, Header: h},
		Downstream: filters.Connection{RemoteAddr: netip.MustParseAddrPort(client), LocalAddr: netip.MustParseAddrPort("127.0.0.1:8080")},
	}
	if tbl != nil {
		if r := tbl.Match(&x.Request, &x.Downstream); r != nil {
			x.Route = r
		}
	}
	return x
}

func limit(actions ...*routev3.RateLimit_Action) *routev3.RateLimit {
	return &routev3.RateLimit{Actions: actions}
}

func headerAction(header, key string) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{
		RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{HeaderName: header, DescriptorKey: key}}}
}

func remoteAction() *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RemoteAddress_{RemoteAddress: &routev3.RateLimit_Action_RemoteAddress{}}}
}

func genericAction(key, value string) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_GenericKey_{
		GenericKey: &routev3.RateLimit_Action_GenericKey{DescriptorKey: key, DescriptorValue: value}}}
}

func wrapperUInt32(v uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(v) }
