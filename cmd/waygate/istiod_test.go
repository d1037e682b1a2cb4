package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/waygate/waygate/gateway/xds/dump"
)

// The xDS istiod generates for a Bookinfo ingress gateway, served as is
// (only the listener port moved to a free one), is accepted whole: the
// Istio-only filters are skipped with a log line, and /productpage
// reaches the productpage backend through the EDS cluster istiod named.
func TestProxyAcceptsIstiodGatewayConfig(t *testing.T) {
	data, err := os.ReadFile("../../../shared/xds-samples/bookinfo-gateway.xds.txt")
	if err != nil {
		t.Skipf("istiod samples not present: %v", err)
	}
	msgs, err := dump.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	backends := map[string]string{}
	for _, svc := range []string{"productpage", "reviews", "ratings", "details"} {
		backends[svc] = startBackend(t, svc, "v1").Addr()
	}
	port := freePort(t)
	res := map[resourcev3.Type][]types.Resource{}
	for _, m := range msgs {
		switch r := m.(type) {
		case *listenerv3.Listener:
			r.GetAddress().GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: uint32(port)}
			res[resourcev3.ListenerType] = append(res[resourcev3.ListenerType], r)
		case *routev3.RouteConfiguration:
			res[resourcev3.RouteType] = append(res[resourcev3.RouteType], r)
		case *clusterv3.Cluster:
			res[resourcev3.ClusterType] = append(res[resourcev3.ClusterType], r)
			if r.GetType() != clusterv3.Cluster_EDS {
				continue
			}
			// outbound|9080|v1|reviews.default.svc.cluster.local
			parts := strings.Split(r.GetName(), "|")
			svc := strings.Split(parts[3], ".")[0]
			if addr, ok := backends[svc]; ok {
				res[resourcev3.EndpointType] = append(res[resourcev3.EndpointType], assignment(r.GetEdsClusterConfig().GetServiceName(), addr))
			}
		}
	}
	xds := startXDS(t)
	xds.push(t, "istiod-node", "1", res)
	p := startProxy(t, xds.addr, "istiod-node")
	p.waitReady(t)
	if n := xds.nackCount(); n != 0 {
		t.Fatalf("istiod's config was NACKed: %s", xds.lastNACK())
	}
	cl := &http.Client{Timeout: 5 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for path, svc := range map[string]string{"/productpage": "productpage", "/static/css/style.css": "productpage", "/api/v1/products": "productpage"} {
		resp, body := get(t, cl, base+path, nil)
		if resp.StatusCode != 200 || resp.Header.Get("x-service") != svc {
			t.Errorf("GET %s: %d from %q: %s", path, resp.StatusCode, resp.Header.Get("x-service"), body)
		}
		if got := resp.Header.Get("Server"); got != "istio-envoy" {
			t.Errorf("GET %s: server header %q, want istiod's server_name", path, got)
		}
	}
	if out := p.out.String(); !strings.Contains(out, "istio.metadata_exchange") || !strings.Contains(out, "no-op") {
		t.Errorf("the Istio-only filters were not logged as skipped:\n%s", out)
	}
}
