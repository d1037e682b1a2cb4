package router

import (
	"fmt"
	"testing"
)

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
