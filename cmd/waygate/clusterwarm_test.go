package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// A control plane that sends listeners, routes and clusters before the
// clusters' endpoints does not get a gateway serving 503s: as Envoy's,
// the listener warms until the initial clusters have their endpoints, so
// the port refuses connections and /ready is not LIVE meanwhile, and the
// first request after it turns ready reaches the backend.
func TestProxyWaitsForInitialClusterWarmup(t *testing.T) {
	be := startBackend(t, "a", "v1")
	port := freePort(t)
	rc := &routev3.RouteConfiguration{Name: "http.warm", VirtualHosts: []*routev3.VirtualHost{{
		Name: "all", Domains: []string{"*"}, Routes: []*routev3.Route{{Match: prefix("/"), Action: toCluster("a")}},
	}}}
	res := map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {httpListener("warm", port, "http.warm")},
		resourcev3.RouteType:    {rc},
		resourcev3.ClusterType:  {edsCluster("a")},
	}
	xds := startXDS(t)
	xds.push(t, "node-warm", "1", res)
	p := startProxy(t, xds.addr, "node-warm")

	waitFor(t, func() bool { return strings.Contains(configDump(t, p), `"warming_state"`) })
	waitFor(t, func() bool { return strings.Contains(p.out.String(), `endpoints of cluster \"a\"`) })
	for range 5 {
		resp, err := http.Get("http://" + p.admin + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "LIVE") {
			t.Fatalf("ready before the cluster has endpoints: %d %s", resp.StatusCode, body)
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			t.Fatal("the listener accepts connections before the cluster has endpoints")
		}
		time.Sleep(100 * time.Millisecond)
	}

	res[resourcev3.EndpointType] = []types.Resource{assignment("a", be.Addr())}
	xds.push(t, "node-warm", "2", res)
	p.waitReady(t)
	resp, body := get(t, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/first", port), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}
	if e := decodeEcho(t, body); e.Service != "a" {
		t.Errorf("first request answered by %q, want a", e.Service)
	}
}
