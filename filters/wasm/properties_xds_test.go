package wasm

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// isMetadata checks a message-valued answer: the protobuf wire form of
// want.
func isMetadata(want *corev3.Metadata) func(answer) bool {
	return func(a answer) bool {
		var got corev3.Metadata
		return a.status == 0 && proto.Unmarshal(a.val, &got) == nil && proto.Equal(&got, want)
	}
}

// TestXDSMetadataProperties reads the static metadata of the listener,
// virtual host, route, cluster and upstream host as a plugin written
// for Envoy does (xds.*_metadata), as messages and field by field.
func TestXDSMetadataProperties(t *testing.T) {
	backend := startEcho(t, "backend")
	bare := startEcho(t, "body")
	clusterMD := metadataOf("istio", map[string]any{
		"config":   "/apis/networking.istio.io/v1/namespaces/default/destination-rule/backend",
		"services": []any{map[string]any{"host": "backend.default.svc.cluster.local", "name": "backend", "namespace": "default"}},
	})
	hostMD := metadataOf("envoy.lb", map[string]any{"version": "v1"})
	withMD := hcmtest.StaticCluster("backend", backend.Addr())
	withMD.Metadata = clusterMD
	withMD.LoadAssignment.Endpoints[0].LbEndpoints[0].Metadata = hostMD
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		withMD, hcmtest.StaticCluster("body", bare.Addr()))

	read := func(t *testing.T, host, header string, paths ...string) map[string]answer {
		t.Helper()
		r := do(t, "GET", g.url+"/", "", "host", host, header, strings.Join(paths, ","))
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if header == "x-props" {
			return parseAnswers(t, strings.Split(r.body, "\n"))
		}
		return parseAnswers(t, r.header.Values("X-Prop"))
	}
	type check struct {
		path  string
		check func(answer) bool
	}
	for _, c := range []struct {
		name, host, header string
		checks             []check
	}{
		{"request headers", "shop", "x-props", []check{
			{"xds/route_metadata", isMetadata(testRouteMetadata)},
			{"xds/route_metadata/filter_metadata/istio/config", isStr("/apis/networking.istio.io/v1/namespaces/default/virtual-service/all")},
			{"xds/route_metadata/filter_metadata/istio/none", isStatus(1)},
			{"xds/route_metadata/filter_metadata/other", isStatus(1)},
			{"xds/virtual_host_metadata/filter_metadata/team/owner", isStr("books")},
			{"xds/listener_metadata/filter_metadata/team/owner", isStr("edge")},
			{"xds/listener_direction", isInt(int64(corev3.TrafficDirection_OUTBOUND))},
			// Known once the route is: before the router runs.
			{"xds/cluster_metadata", isMetadata(clusterMD)},
			{"xds/cluster_metadata/filter_metadata/istio/services", func(a answer) bool {
				return a.status == 0 && strings.Contains(string(a.val), "backend.default.svc.cluster.local")
			}},
			{"xds/cluster_metadata/filter_metadata/istio/config", isStr("/apis/networking.istio.io/v1/namespaces/default/destination-rule/backend")},
			// No host is picked yet.
			{"xds/upstream_host_metadata", isStatus(1)},
		}},
		{"response headers", "shop", "x-resp-props", []check{
			{"xds/upstream_host_metadata", isMetadata(hostMD)},
			{"xds/upstream_host_metadata/filter_metadata/envoy.lb/version", isStr("v1")},
			{"xds/cluster_metadata/filter_metadata/istio/config", isStr("/apis/networking.istio.io/v1/namespaces/default/destination-rule/backend")},
		}},
		// A route, virtual host, cluster and host without metadata read
		// as an empty message.
		{"no metadata", "body", "x-resp-props", []check{
			{"xds/route_metadata", isStr("")},
			{"xds/virtual_host_metadata", isStr("")},
			{"xds/cluster_metadata", isStr("")},
			{"xds/upstream_host_metadata", isStr("")},
			{"xds/route_metadata/filter_metadata/istio", isStatus(1)},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var paths []string
			for _, ch := range c.checks {
				paths = append(paths, ch.path)
			}
			got := read(t, c.host, c.header, paths...)
			for _, ch := range c.checks {
				if a, ok := got[ch.path]; !ok || !ch.check(a) {
					t.Errorf("%s = status %d %q (answered: %v)", ch.path, a.status, a.val, ok)
				}
			}
		})
	}
}
