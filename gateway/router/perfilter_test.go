package router

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

const faultType = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

// The fault filter's per-route type, registered for this package's tests
// only: each config compiles to "fault:<abort status>".
func init() {
	filters.RegisterRouteConfig(faultType, func(m proto.Message) (any, error) {
		f, ok := m.(*faultv3.HTTPFault)
		if !ok {
			return nil, fmt.Errorf("unexpected %T", m)
		}
		if f.GetAbort().GetHttpStatus() == 999 {
			return nil, errors.New("abort.http_status: 999 is not a status")
		}
		return fmt.Sprintf("fault:%d", f.GetAbort().GetHttpStatus()), nil
	})
}

func fault(status int) string {
	return fmt.Sprintf(`{"@type": %q, abort: {http_status: %d, percentage: {numerator: 100}}}`, faultType, status)
}

func TestPerFilterConfigPrecedence(t *testing.T) {
	tbl := compileYAML(t, fmt.Sprintf(`
typed_per_filter_config:
  envoy.filters.http.fault: %s
  other: %s
virtual_hosts:
- name: vh
  domains: ["*"]
  typed_per_filter_config:
    envoy.filters.http.fault: %s
  routes:
  - name: route-level
    match: {prefix: /route}
    typed_per_filter_config:
      envoy.filters.http.fault: %s
    route:
      weighted_clusters:
        clusters:
        - {name: a, weight: 1, typed_per_filter_config: {envoy.filters.http.fault: %s}}
        - {name: b, weight: 1}
  - name: vhost-level
    match: {prefix: /}
    route: {cluster: c}
`, fault(500), fault(501), fault(502), fault(503), fault(504)))
	r := tbl.Match(newReq("GET", "h", "/route"), testConn)
	if got := r.PerFilterConfig("envoy.filters.http.fault"); got != "fault:503" {
		t.Errorf("route: got %v", got)
	}
	if got := r.PerFilterConfig("other"); got != "fault:501" {
		t.Errorf("route falls back to the route configuration: got %v", got)
	}
	if got := r.PerFilterConfig("missing"); got != nil {
		t.Errorf("missing: got %v", got)
	}
	_, a := r.Target(newReq("GET", "h", "/route"), 0)
	_, b := r.Target(newReq("GET", "h", "/route"), 1)
	if got := a.PerFilterConfig("envoy.filters.http.fault"); got != "fault:504" {
		t.Errorf("weighted cluster a: got %v", got)
	}
	if got := b.PerFilterConfig("envoy.filters.http.fault"); got != "fault:503" {
		t.Errorf("weighted cluster b falls back to the route: got %v", got)
	}
	var fr filters.Route = a
	if fr.Name() != "route-level" || fr.VirtualHost() != "vh" || fr.Cluster() != "a" {
		t.Errorf("weighted cluster as filters.Route: %q %q %q", fr.Name(), fr.VirtualHost(), fr.Cluster())
	}
	v := tbl.Match(newReq("GET", "h", "/x"), testConn)
	if got := v.PerFilterConfig("envoy.filters.http.fault"); got != "fault:502" {
		t.Errorf("vhost: got %v", got)
	}
	if got := tbl.PerFilterConfig("envoy.filters.http.fault"); got != "fault:500" {
		t.Errorf("table: got %v", got)
	}
}

func TestPerFilterConfigWrapped(t *testing.T) {
	filterConfig := func(inner string, optional, disabled bool) string {
		s := `{"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig"`
		if inner != "" {
			s += ", config: " + inner
		}
		return s + fmt.Sprintf(", is_optional: %v, disabled: %v}", optional, disabled)
	}
	cors := `{"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"}`
	tbl := compileYAML(t, fmt.Sprintf(`
virtual_hosts:
- name: vh
  domains: ["*"]
  typed_per_filter_config:
    cors: %s
    fault: %s
  routes:
  - name: r
    match: {prefix: /}
    route: {cluster: c}
    typed_per_filter_config:
      wrapped: %s
      turned-off: %s
      optional-unknown: %s
      fault: %s
      typed-struct: {"@type": "type.googleapis.com/xds.type.v3.TypedStruct", type_url: %q, value: {abort: {http_status: 429}}}
      udpa-struct: {"@type": "type.googleapis.com/udpa.type.v1.TypedStruct", type_url: %q, value: {abort: {http_status: 430}}}
`, filterConfig(fault(418), false, false), fault(500),
		filterConfig(fault(410), false, false),
		filterConfig("", false, true),
		filterConfig(cors, true, false),
		filterConfig(cors, true, false), faultType, faultType))
	r := tbl.Match(newReq("GET", "h", "/"), testConn)
	for name, want := range map[string]any{
		"wrapped":          "fault:410",
		"turned-off":       filters.Disabled{},
		"optional-unknown": nil,
		// An optional entry nobody understands is skipped, so the
		// virtual host's entry applies.
		"fault": "fault:500",
		"cors":  "fault:418",
		// TypedStruct carries the config as JSON under its type URL.
		"typed-struct": "fault:429",
		"udpa-struct":  "fault:430",
	} {
		if got := r.PerFilterConfig(name); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}

func TestPerFilterConfigErrors(t *testing.T) {
	cors := `{"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"}`
	tests := []struct {
		name, yaml, want string
		unknown          bool
	}{
		{"unknown type", fmt.Sprintf(`
virtual_hosts:
- {name: vh, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: c}, typed_per_filter_config: {envoy.filters.http.cors: %s}}]}
`, cors), `virtual_hosts[0] "vh": routes[0].typed_per_filter_config["envoy.filters.http.cors"]: unknown filter config type type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy`, true},
		{"builder error", fmt.Sprintf(`
typed_per_filter_config: {envoy.filters.http.fault: %s}
`, fault(999)), `typed_per_filter_config["envoy.filters.http.fault"]: type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault: abort.http_status: 999 is not a status`, false},
		{"weighted cluster", fmt.Sprintf(`
virtual_hosts:
- {name: vh, domains: ["*"], routes: [{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: a, weight: 1, typed_per_filter_config: {x: %s}}]}}}]}
`, cors), `routes[0].route.weighted_clusters.clusters[0].typed_per_filter_config["x"]: unknown filter config type`, true},
		{"FilterConfig without config", `
virtual_hosts:
- name: vh
  domains: ["*"]
  typed_per_filter_config: {x: {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig"}}
`, `typed_per_filter_config["x"]: config: must be set unless disabled is true`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := compileErr(t, tt.yaml)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
			if errors.Is(err, filters.ErrUnknown) != tt.unknown {
				t.Errorf("errors.Is(err, filters.ErrUnknown) = %v", !tt.unknown)
			}
		})
	}
}
