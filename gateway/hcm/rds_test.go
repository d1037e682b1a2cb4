package hcm_test

import (
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestRDS checks that a connection manager with rds routes with the
// View's table of that name, and answers 404 while it has none.
func TestRDS(t *testing.T) {
	echo := startEcho(t, "echo")
	tests := []struct {
		name   string
		tables []*routev3.RouteConfiguration
		want   int
	}{
		{"the named table routes", []*routev3.RouteConfiguration{named("http.8080", hcmtest.Routes(hcmtest.Prefix("/", "echo")))}, 200},
		{"another table is not used", []*routev3.RouteConfiguration{named("http.9090", hcmtest.Routes(hcmtest.Prefix("/", "echo")))}, 404},
		{"no table yet", nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hcmtest.HCM(t, nil)
			m.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "http.8080"}}
			gw := hcmtest.Start(t, hcmtest.Options{HCM: m, Routes: tt.tables, Clusters: staticClusters([]*clusterSpec{{"echo", echo.Addr()}})})
			if r := do(t, hcmtest.Client(), "GET", gw.URL+"/", ""); r.status != tt.want {
				t.Errorf("status %d, want %d", r.status, tt.want)
			}
		})
	}
}

func named(name string, rc *routev3.RouteConfiguration) *routev3.RouteConfiguration {
	rc.Name = name
	return rc
}
