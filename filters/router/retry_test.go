package router_test

import (
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

// route forwards prefix to cluster, with edit applied to its action.
func route(prefix, cluster string, edit func(a *routev3.RouteAction)) *routev3.Route {
	r := hcmtest.Prefix(prefix, cluster)
	if edit != nil {
		edit(r.GetRoute())
	}
	return r
}

// retry sets a retry policy with a 1ms backoff, so tests do not wait.
func retry(on string, n uint32, edit func(p *routev3.RetryPolicy)) func(a *routev3.RouteAction) {
	return func(a *routev3.RouteAction) {
		a.RetryPolicy = &routev3.RetryPolicy{
			RetryOn:      on,
			NumRetries:   wrapperspb.UInt32(n),
			RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Millisecond)},
		}
		if edit != nil {
			edit(a.RetryPolicy)
		}
	}
}

func countAttempts(vh *routev3.VirtualHost) {
	vh.IncludeRequestAttemptCount = true
	vh.IncludeAttemptCountInResponse = true
}

func previousHosts(max int64) func(p *routev3.RetryPolicy) {
	return func(p *routev3.RetryPolicy) {
		p.RetryHostPredicate = []*routev3.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}}
		p.HostSelectionRetryMaxAttempts = max
	}
}

func perTry(d time.Duration) func(p *routev3.RetryPolicy) {
	return func(p *routev3.RetryPolicy) { p.PerTryTimeout = durationpb.New(d) }
}

func TestRetries(t *testing.T) {
	good := startEcho(t, backend.Options{Service: "good"})
	bad := startEcho(t, backend.Options{Service: "bad", FailPercent: 100})
	// hang answers after the test ends only: a try that waits on it can
	// only end by its per-try timeout.
	stop := make(chan struct{})
	hang := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(stop) })
	dead := deadAddr(t)

	tests := []struct {
		name     string
		cluster  *clusterv3.Cluster
		action   func(a *routev3.RouteAction)
		method   string
		body     string
		requests int
		// want is the status of every request; attempts, when set, is
		// the x-envoy-attempt-count of the last one.
		want     int
		wantBody string
		attempts string
	}{{
		name:     "5xx is retried on the other endpoint",
		cluster:  hcmtest.StaticCluster("c", bad.Addr(), good.Addr()),
		action:   retry("5xx", 2, nil),
		requests: 4,
		want:     200,
	}, {
		name:     "without a retry policy the 503 reaches the client",
		cluster:  hcmtest.StaticCluster("c", bad.Addr()),
		action:   nil,
		requests: 1,
		want:     503,
	}, {
		name:     "retries end after num_retries",
		cluster:  hcmtest.StaticCluster("c", bad.Addr()),
		action:   retry("5xx", 2, nil),
		requests: 1,
		want:     503,
		attempts: "3",
	}, {
		name:     "connect-failure is retried on the other endpoint",
		cluster:  hcmtest.StaticCluster("c", dead, good.Addr()),
		action:   retry("connect-failure", 1, nil),
		requests: 4,
		want:     200,
	}, {
		name:     "a connect failure without retries is a 503",
		cluster:  hcmtest.StaticCluster("c", dead),
		action:   nil,
		requests: 1,
		want:     503,
		wantBody: "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
	}, {
		name: "previous_hosts draws again instead of retrying the failed host",
		// Round robin over bad, bad, good: the retry's first draw is
		// the host that just failed.
		cluster:  hcmtest.StaticCluster("c", bad.Addr(), bad.Addr(), good.Addr()),
		action:   retry("5xx", 1, previousHosts(3)),
		requests: 3,
		want:     200,
		attempts: "2",
	}, {
		name:     "without previous_hosts the retry may hit the failed host again",
		cluster:  hcmtest.StaticCluster("c", bad.Addr(), bad.Addr(), good.Addr()),
		action:   retry("5xx", 1, nil),
		requests: 1,
		want:     503,
		attempts: "2",
	}, {
		name:     "a per-try timeout moves on to the next endpoint",
		cluster:  hcmtest.StaticCluster("c", hang, good.Addr()),
		action:   retry("5xx", 1, perTry(100*time.Millisecond)),
		requests: 2,
		want:     200,
	}, {
		name:     "a per-try timeout on the last try is a 504",
		cluster:  hcmtest.StaticCluster("c", hang),
		action:   retry("5xx", 1, perTry(50*time.Millisecond)),
		requests: 1,
		want:     504,
		wantBody: "upstream request timeout",
		attempts: "2",
	}, {
		name:     "requests with a body are not retried",
		cluster:  hcmtest.StaticCluster("c", bad.Addr(), good.Addr()),
		action:   retry("5xx", 2, nil),
		method:   "POST",
		body:     "payload",
		requests: 1,
		want:     503,
		attempts: "1",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := start(t, countAttempts, []*routev3.Route{route("/", "c", tt.action)}, tt.cluster)
			c := hcmtest.Client()
			method := tt.method
			if method == "" {
				method = "GET"
			}
			var r result
			retried := false
			for i := 0; i < tt.requests; i++ {
				r = do(t, c, method, gw.URL+"/", tt.body)
				if r.status != tt.want {
					t.Fatalf("request %d: status %d (%.100q), want %d", i, r.status, r.body, tt.want)
				}
				if tt.want == 200 {
					e := r.echo(t)
					if e.Service != "good" {
						t.Fatalf("request %d answered by %q", i, e.Service)
					}
					if n := e.Headers["x-envoy-attempt-count"]; n != "1" {
						retried = true
						if n != r.header.Get("X-Envoy-Attempt-Count") {
							t.Errorf("upstream saw attempt %s, response says %s", n, r.header.Get("X-Envoy-Attempt-Count"))
						}
					}
				}
			}
			if tt.want == 200 && tt.requests > 1 && !retried {
				t.Errorf("no request needed a retry; the test does not test retries")
			}
			if tt.attempts != "" && r.header.Get("X-Envoy-Attempt-Count") != tt.attempts {
				t.Errorf("attempts = %q, want %s", r.header.Get("X-Envoy-Attempt-Count"), tt.attempts)
			}
			if tt.wantBody != "" && r.body != tt.wantBody {
				t.Errorf("body = %q, want %q", r.body, tt.wantBody)
			}
		})
	}
}
