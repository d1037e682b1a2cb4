package dump

import (
	"os"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// The dumps istiod produced for a Bookinfo gateway must parse whole.
func TestParseIstiodSamples(t *testing.T) {
	for _, tc := range []struct {
		file                        string
		listeners, routes, clusters int
	}{
		{"bookinfo-gateway.xds.txt", 1, 1, 15},
		{"bookinfo-jwt-authz-wasm.xds.txt", 1, 1, 15},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("../../../../shared/xds-samples/" + tc.file)
			if err != nil {
				t.Skipf("samples not present: %v", err)
			}
			ms, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			var l, r, c int
			for _, m := range ms {
				switch m.(type) {
				case *listenerv3.Listener:
					l++
				case *routev3.RouteConfiguration:
					r++
				case *clusterv3.Cluster:
					c++
				}
			}
			if l != tc.listeners || r != tc.routes || c < tc.clusters {
				t.Errorf("got %d listeners, %d routes, %d clusters; want %d, %d, >=%d", l, r, c, tc.listeners, tc.routes, tc.clusters)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for name, in := range map[string]string{
		"unclosed json": "{\n  \"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\",\n",
		"unknown text":  "no_such_field: 1\n",
		"unknown type":  "{\n\"@type\": \"type.googleapis.com/nope.Nope\"\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name: \"x\"\n"))
	f.Add([]byte("{\n\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\"\n}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse(b)
	})
}
