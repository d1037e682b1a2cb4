package router_test

import (
	"fmt"
	"net/http"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/router"
)

// The terminal router filter's view: match once, then resolve the
// cluster, finalize the request, and answer redirects locally.
func Example() {
	tbl, err := router.Compile(&routev3.RouteConfiguration{
		Name:                     "http.8080",
		IgnorePortInHostMatching: true,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "bookinfo",
			Domains: []string{"bookinfo.example.com"},
			Routes: []*routev3.Route{
				{
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/old/"}},
					Action: &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{
						SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true},
						PathRewriteSpecifier:   &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/new/"},
					}},
				},
				{
					Name:  "api",
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/api/"}},
					Action: &routev3.Route_Route{Route: &routev3.RouteAction{
						ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "outbound|9080||productpage.default.svc.cluster.local"},
						PrefixRewrite:    "/",
					}},
					RequestHeadersToAdd: []*corev3.HeaderValueOption{{
						Header: &corev3.HeaderValue{Key: "x-client", Value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"},
					}},
				},
			},
		}},
	})
	if err != nil {
		panic(err)
	}
	x := &filters.Exchange{Request: filters.Request{
		Method: "GET", Scheme: "http", Authority: "bookinfo.example.com", Path: "/api/products?id=1", Header: http.Header{},
	}}
	r := tbl.Match(&x.Request, &x.Downstream)
	cluster, wc := r.Target(&x.Request, 0)
	r.FinalizeRequest(x, wc, false)
	fmt.Println(r.Name(), cluster, x.Request.Path, r.Forward.Timeout)

	old := &filters.Request{Scheme: "http", Authority: "bookinfo.example.com:80", Path: "/old/page?x=1"}
	redirect := tbl.Match(old, nil)
	fmt.Println(redirect.Redirect.Code, redirect.Location(old))
	// Output:
	// api outbound|9080||productpage.default.svc.cluster.local /products?id=1 15s
	// 301 https://bookinfo.example.com/new/page?x=1
}
