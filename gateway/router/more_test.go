package router

import (
	"fmt"
	"testing"
	"time"

	"github.com/waygate/waygate/filters"
)

func TestRetriableHeaders(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{cluster: c, retry_policy: {retry_on: "retriable-headers",
	  retriable_headers: [{name: x-retry, string_match: {exact: "yes"}}],
	  retriable_request_headers: [{name: ":method", string_match: {exact: GET}}]}}`)
	p := r.Forward.Retry
	if !p.RetriableRequest(newReq("GET", "h", "/")) || p.RetriableRequest(newReq("POST", "h", "/")) {
		t.Error("retriable_request_headers")
	}
	if !p.RetriableResponse(map[string][]string{"X-Retry": {"yes"}}) || p.RetriableResponse(map[string][]string{}) {
		t.Error("retriable_headers")
	}
	plain := oneAction(t, `{prefix: /}`, `{cluster: c, retry_policy: {retry_on: "5xx"}}`).Forward.Retry
	if !plain.RetriableRequest(newReq("POST", "h", "/")) || plain.RetriableResponse(map[string][]string{"X-Retry": {"yes"}}) {
		t.Error("a policy without header conditions")
	}
}

func TestHostRewriteFormat(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{cluster: c, host_rewrite: "%REQ(x-tenant)%.internal"}`)
	x := &filters.Exchange{Request: *newReq("GET", "h", "/", "x-tenant", "acme")}
	if h, ok := r.RewriteHost(x); !ok || h != "acme.internal" {
		t.Errorf("RewriteHost = %q, %v", h, ok)
	}
	r = oneAction(t, `{prefix: /}`, `{cluster: c, auto_host_rewrite: true}`)
	if _, ok := r.RewriteHost(x); ok || !r.Forward.AutoHostRewrite {
		t.Error("auto_host_rewrite is the router's to apply")
	}
}

func TestVirtualHostAccessors(t *testing.T) {
	tbl := compileYAML(t, fmt.Sprintf(`
internal_only_headers: [x-internal]
typed_per_filter_config: {f: %s}
virtual_hosts:
- name: vh
  domains: ["a.com", "b.com"]
  require_tls: ALL
  include_attempt_count_in_response: true
  typed_per_filter_config: {g: %s}
  routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]
`, fault(500), fault(501)))
	vh := tbl.VirtualHosts()[0]
	if vh.Name() != "vh" || len(vh.Domains()) != 2 || vh.RequireTLS != "ALL" || !vh.IncludeAttemptCountInResponse || vh.Config().GetName() != "vh" {
		t.Errorf("virtual host: %+v", vh)
	}
	if vh.PerFilterConfig("g") != "fault:501" || vh.PerFilterConfig("f") != "fault:500" || vh.PerFilterConfig("h") != nil {
		t.Error("virtual host PerFilterConfig")
	}
	r := vh.Routes()[0]
	if r.VirtualHost() != "vh" || r.VHost() != vh || r.Config().GetName() != "r" || r.Cluster() != "c" {
		t.Errorf("route: %v", r)
	}
	if got := tbl.InternalOnlyHeaders(); len(got) != 1 || got[0] != "x-internal" || tbl.Config().GetName() != "" {
		t.Errorf("InternalOnlyHeaders = %v", got)
	}
}

func TestFormatTime(t *testing.T) {
	ts := time.Date(2026, 1, 2, 15, 4, 5, 123456789, time.UTC)
	for spec, want := range map[string]string{
		"%Y-%m-%dT%H:%M:%S":  "2026-01-02T15:04:05",
		"%E3S|%E6S|%E9S":     "05.123|05.123456|05.123456789",
		"%f|%3f|%6f":         "123456789|123|123456",
		"%s":                 "1767366245",
		"%y %j %e %b %B":     "26 002  2 Jan January",
		"%a %A %p %z %Z":     "Fri Friday PM +0000 UTC",
		"%T %F %D %R %% end": "15:04:05 2026-01-02 01/02/26 15:04 % end",
	} {
		tf, err := compileTimeFormat(spec)
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		if got := formatTime(ts, tf); got != want {
			t.Errorf("%q: got %q, want %q", spec, got, want)
		}
	}
	if got := formatTime(ts, nil); got != "2026-01-02T15:04:05.123Z" {
		t.Errorf("default: %q", got)
	}
}

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
