package client

import (
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	testresource "github.com/envoyproxy/go-control-plane/pkg/test/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const ecds = resourcev3.ExtensionConfigType

// ecdsHandler wants, for each listener "lN" it holds, the extension
// config "pN", as a gateway wants the configs its filters name.
type ecdsHandler struct{ *testHandler }

func (h ecdsHandler) Names(typeURL string) []string {
	if typeURL != ecds {
		return h.testHandler.Names(typeURL)
	}
	out := []string{}
	for _, l := range h.set(lds) {
		out = append(out, "p"+strings.TrimPrefix(l, "l"))
	}
	return out
}

// ecdsSnapshot is listener l<n> (with its route and cluster) and the
// extension configs named. In ADS mode go-control-plane's cache answers
// a SotW request only when it names every resource of the type the
// snapshot holds, so a snapshot holds just what its listeners use.
func ecdsSnapshot(t *testing.T, version, n string, exts ...string) *cachev3.Snapshot {
	t.Helper()
	res := map[resourcev3.Type][]types.Resource{
		lds: {testresource.MakeRouteHTTPListener(testresource.Ads, "l"+n, 8080, "r"+n)},
		rds: {testresource.MakeRouteConfig("r"+n, "c"+n)},
		cds: {testresource.MakeCluster(testresource.Ads, "c"+n)},
		eds: {testresource.MakeEndpoint("c"+n, 9000)},
	}
	for _, e := range exts {
		cfg, err := anypb.New(wrapperspb.String(e))
		if err != nil {
			t.Fatal(err)
		}
		res[ecds] = append(res[ecds], &corev3.TypedExtensionConfig{Name: e, TypedConfig: cfg})
	}
	snap, err := cachev3.NewSnapshot(version, res)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// The client subscribes to the extension configs the handler names once
// the listeners are in, follows the names as listeners change, and drops
// a config no listener names any more.
func TestSubscribesExtensionConfigsByName(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := startServer(t, "127.0.0.1:0")
			srv.set(t, ecdsSnapshot(t, "1", "1", "p1"))
			h := ecdsHandler{newTestHandler()}
			startClient(t, srv.addr, m.delta, h)
			h.waitSets(t, map[string][]string{lds: {"l1"}, rds: {"r1"}, cds: {"c1"}, eds: {"c1"}, ecds: {"p1"}})
			if m.delta {
				srv.waitDelta(t, "ECDS subscribe p1", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == ecds && slices.Equal(r.GetResourceNamesSubscribe(), []string{"p1"})
				})
			} else {
				srv.waitSotW(t, "ECDS request for p1", func(r *discoveryv3.DiscoveryRequest) bool {
					return r.GetTypeUrl() == ecds && slices.Equal(r.GetResourceNames(), []string{"p1"})
				})
			}

			srv.set(t, ecdsSnapshot(t, "2", "2", "p2"))
			h.waitSets(t, map[string][]string{lds: {"l2"}, rds: {"r2"}, cds: {"c2"}, eds: {"c2"}, ecds: {"p2"}})
			if m.delta {
				srv.waitDelta(t, "ECDS subscribe p2, unsubscribe p1", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == ecds && slices.Equal(r.GetResourceNamesSubscribe(), []string{"p2"}) &&
						slices.Equal(r.GetResourceNamesUnsubscribe(), []string{"p1"})
				})
			} else {
				srv.waitSotW(t, "ECDS request for p2 only", func(r *discoveryv3.DiscoveryRequest) bool {
					return r.GetTypeUrl() == ecds && slices.Equal(r.GetResourceNames(), []string{"p2"})
				})
			}
		})
	}
}
