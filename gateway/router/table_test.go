package router

import (
	"testing"

	"github.com/waygate/waygate/filters"
)

func TestMatchExchange(t *testing.T) {
	tbl := oneRoute(t, `{path: /a}`)
	x := &filters.Exchange{Request: *newReq("GET", "h", "/b")}
	x.SetRouteMatcher(tbl.MatchExchange)
	if x.Route = tbl.MatchExchange(x); x.Route != nil {
		t.Fatalf("no route should match /b, got %v", x.Route)
	}
	x.Request.Path = "/a"
	x.ClearRouteCache()
	if r := x.MatchedRoute(); r == nil || r.Name() != "r" {
		t.Errorf("after ClearRouteCache: %v", r)
	}
}
