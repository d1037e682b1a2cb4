package upstream_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestRetryLeavesHashedHost: with consistent hashing a key always
// reaches one host; when that host fails, a retry with the
// previous_hosts predicate moves to another and succeeds.
func TestRetryLeavesHashedHost(t *testing.T) {
	for _, p := range []clusterv3.Cluster_LbPolicy{clusterv3.Cluster_RING_HASH, clusterv3.Cluster_MAGLEV} {
		t.Run(p.String(), func(t *testing.T) {
			var bs []*backend.Server
			var eps []ep
			for _, v := range []string{"a", "b", "c"} {
				b := startBackend(t, backend.Options{Version: v})
				bs = append(bs, b)
				eps = append(eps, ep{addr: b.Addr()})
			}
			r := hcmtest.Prefix("/", "c")
			r.GetRoute().HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
				Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x-user"},
			}}}
			// Each host selection attempt flips the hash as Envoy does,
			// to a neighbouring Maglev entry or ring point, which may be
			// the same host again: with 5 attempts the retry stayed on
			// the failing host in about one run in two hundred.
			r.GetRoute().RetryPolicy = &routev3.RetryPolicy{
				RetryOn:                       "5xx",
				NumRetries:                    wrapperspb.UInt32(1),
				RetryBackOff:                  &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Millisecond)},
				RetryHostPredicate:            []*routev3.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}},
				HostSelectionRetryMaxAttempts: 20,
			}
			gw := hcmtest.Start(t, hcmtest.Options{
				HCM:      hcmtest.HCM(t, hcmtest.Routes(r)),
				Clusters: []*clusterv3.Cluster{cluster(eps, policy(p))},
			})
			get := func() (int, string) {
				req, _ := http.NewRequest("GET", gw.URL+"/", nil)
				req.Header.Set("x-user", "alice")
				resp, err := hcmtest.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				var e backend.Echo
				_ = json.Unmarshal(b, &e)
				return resp.StatusCode, e.Version
			}
			_, home := get()
			for i := 0; i < 5; i++ {
				if _, v := get(); v != home {
					t.Fatalf("alice went to %q, then %q", home, v)
				}
			}
			for _, b := range bs {
				if b.Version() == home {
					if err := b.SetFailPercent(100); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := 0; i < 5; i++ {
				status, v := get()
				if status != 200 || v == home {
					t.Fatalf("with %q failing alice got %d from %q, want 200 from another host", home, status, v)
				}
			}
		})
	}
}
