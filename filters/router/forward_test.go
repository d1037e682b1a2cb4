package router_test

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

func timeout(d time.Duration) func(a *routev3.RouteAction) {
	return func(a *routev3.RouteAction) { a.Timeout = durationpb.New(d) }
}

func TestTimeoutsAndResets(t *testing.T) {
	echo := startEcho(t, backend.Options{Service: "echo"})
	gw := start(t, nil, []*routev3.Route{
		route("/short", "echo", timeout(100*time.Millisecond)),
		route("/none", "echo", timeout(0)),
		route("/", "echo", timeout(10*time.Second)),
	}, hcmtest.StaticCluster("echo", echo.Addr()))

	tests := []struct {
		name     string
		path     string
		hdr      []string
		want     int
		wantBody string
	}{
		{"route timeout", "/short", []string{"x-echo-delay", "5s"}, 504, "upstream request timeout"},
		{"an answer within the route timeout", "/short", nil, 200, ""},
		{"x-envoy-upstream-rq-timeout-ms shortens the route timeout", "/", []string{"x-echo-delay", "5s", "x-envoy-upstream-rq-timeout-ms", "50"}, 504, "upstream request timeout"},
		{"x-envoy-upstream-rq-timeout-ms lengthens the route timeout", "/short", []string{"x-echo-delay", "300ms", "x-envoy-upstream-rq-timeout-ms", "10000"}, 200, ""},
		{"x-envoy-upstream-rq-timeout-ms 0 disables the timeout", "/short", []string{"x-echo-delay", "300ms", "x-envoy-upstream-rq-timeout-ms", "0"}, 200, ""},
		{"timeout 0 disables the route timeout", "/none", []string{"x-echo-delay", "300ms"}, 200, ""},
		{"reset before headers", "/", []string{"x-echo-reset", "true"}, 503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination"},
		{"upstream 503 passes through", "/", []string{"x-echo-status", "503"}, 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, hcmtest.Client(), "GET", gw.URL+tt.path, "", tt.hdr...)
			if r.status != tt.want {
				t.Fatalf("status %d (%.100q), want %d", r.status, r.body, tt.want)
			}
			if tt.wantBody != "" && r.body != tt.wantBody {
				t.Errorf("body %q, want %q", r.body, tt.wantBody)
			}
			if tt.want == 200 && r.echo(t).Headers["x-envoy-upstream-rq-timeout-ms"] != "" {
				t.Errorf("x-envoy-upstream-rq-timeout-ms was forwarded upstream")
			}
		})
	}
}

func TestMirror(t *testing.T) {
	primary := startEcho(t, backend.Options{Service: "primary"})
	hosts := make(chan string, 4)
	shadow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		hosts <- r.Host
		io.WriteString(w, "shadow answer")
	})
	gw := start(t, nil, []*routev3.Route{route("/", "primary", func(a *routev3.RouteAction) {
		a.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{{Cluster: "shadow"}}
	})}, hcmtest.StaticCluster("primary", primary.Addr()), hcmtest.StaticCluster("shadow", shadow))

	tests := []struct{ host, wantShadow string }{
		{"reviews", "reviews-shadow"},
		{"reviews:9080", "reviews-shadow:9080"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			r := do(t, hcmtest.Client(), "GET", gw.URL+"/mirrored", "", "host", tt.host)
			if r.status != 200 || r.echo(t).Service != "primary" {
				t.Fatalf("client got %d %.80q, want the primary's answer", r.status, r.body)
			}
			select {
			case h := <-hosts:
				if h != tt.wantShadow {
					t.Errorf("shadow saw host %q, want %q", h, tt.wantShadow)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the mirror cluster never got the copy")
			}
		})
	}
}

func TestStreaming(t *testing.T) {
	release := make(chan struct{})
	streamer := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "last\n")
	})
	gw := start(t, nil, []*routev3.Route{route("/", "s", nil)}, hcmtest.StaticCluster("s", streamer))

	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"HTTP/1.1", hcmtest.Client()}, {"h2c", hcmtest.H2CClient()}} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := c.client.Get(gw.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			// The backend holds "last" until the client has "first":
			// a gateway that buffered the response would never answer.
			line, err := br.ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first chunk %q, %v", line, err)
			}
			release <- struct{}{}
			line, err = br.ReadString('\n')
			if err != nil || line != "last\n" {
				t.Fatalf("last chunk %q, %v", line, err)
			}
		})
	}
}

func TestTrailers(t *testing.T) {
	grpcish := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(200)
		io.WriteString(w, "message")
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
	})
	gw := start(t, nil, []*routev3.Route{route("/", "g", nil)}, hcmtest.H2(t, hcmtest.StaticCluster("g", grpcish)))

	// Over HTTP/1.1 the body arrives and the trailers are dropped, as by
	// Envoy without http_protocol_options.enable_trailers.
	for _, c := range []struct {
		name     string
		client   *http.Client
		trailers bool
	}{{"h2c", hcmtest.H2CClient(), true}, {"HTTP/1.1", hcmtest.Client(), false}} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", gw.URL+"/pkg.Service/Method", nil)
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("TE", "trailers")
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != "message" {
				t.Fatalf("body %q, %v", b, err)
			}
			if !c.trailers {
				return
			}
			if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
				t.Errorf("grpc-status trailer = %q, want 0 (trailers %v)", got, resp.Trailer)
			}
			if got := resp.Trailer.Get("Grpc-Message"); got != "fine" {
				t.Errorf("grpc-message trailer = %q, want fine", got)
			}
		})
	}
}
