package wasm

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// upstreams are the clusters the example plugins reach: the routed
// backends and the services plugins call out to.
type upstreams struct {
	backend, canary, web interface{ Requests() int64 }
	body, auth           string
}

func startUpstreams(t *testing.T) (*upstreams, []*clusterv3.Cluster) {
	backend, canary, web := startEcho(t, "backend"), startEcho(t, "canary"), startEcho(t, "web")
	u := &upstreams{backend: backend, canary: canary, web: web, body: startBodyEcho(t), auth: startAuth(t)}
	return u, []*clusterv3.Cluster{
		hcmtest.StaticCluster("backend", backend.Addr()),
		hcmtest.StaticCluster("canary", canary.Addr()),
		hcmtest.StaticCluster("web", web.Addr()),
		hcmtest.StaticCluster("body", u.body),
		hcmtest.StaticCluster("auth", u.auth),
	}
}

// startAuth starts the service http_auth_random calls: it answers with
// the request's b query parameter as the body, so a test picks the
// verdict by the body's hash.
func startAuth(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.URL.Query().Get("b"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// authBody returns a body whose FNV-32a hash is even (granted) or odd.
func authBody(granted bool) string {
	for i := 0; ; i++ {
		s := fmt.Sprintf("token%d", i)
		h := fnv.New32a()
		h.Write([]byte(s))
		if (h.Sum32()%2 == 0) == granted {
			return s
		}
	}
}

// TestSDKExamples runs plugins reproducing the Go SDK's examples
// through a real connection manager chain, with real upstreams.
func TestSDKExamples(t *testing.T) {
	tests := []struct {
		name    string
		plugins func(t *testing.T) []*hcmv3.HttpFilter
		run     func(t *testing.T, g *gateway, u *upstreams)
	}{
		{"http_headers", one("examples", mode("headers", "header", "x-wasm-header", "value", "hello")),
			func(t *testing.T, g *gateway, u *upstreams) {
				r := do(t, "GET", g.url+"/x", "")
				if r.status != 200 || r.header.Get("X-Proxy-Wasm-Go-Sdk-Example") != "http_headers" || r.header.Get("X-Wasm-Header") != "hello" {
					t.Fatalf("got %d %v", r.status, r.header)
				}
				if e := r.echo(t); e.Headers["test"] != "best" {
					t.Errorf("upstream saw test=%q, want best", e.Headers["test"])
				}
				if got := r.header.Get("X-Request-Test"); got != "best" {
					t.Errorf("request header read in the response phase = %q", got)
				}
			}},
		{"http_body replace", one("examples", mode("body")), bodyCase("POST", "hello", "", "[this is replaced body]", "buffer-operation", "replace")},
		{"http_body append", one("examples", mode("body")), bodyCase("POST", "hello", "", "hello[this is appended body]", "buffer-operation", "append")},
		{"http_body prepend", one("examples", mode("body")), bodyCase("POST", "hello", "", "[this is prepended body]hello", "buffer-operation", "prepend")},
		{"http_body response", one("examples", mode("body")), bodyCase("POST", "hello", "", "hello[this is appended body]", "buffer-operation", "append", "buffer-replace-at", "response")},
		{"http_body no content", one("examples", mode("body")),
			func(t *testing.T, g *gateway, u *upstreams) {
				r := do(t, "GET", g.url+"/body", "")
				if r.status != 400 || r.body != "content must be provided" {
					t.Fatalf("got %d %q", r.status, r.body)
				}
			}},
		{"http_body echo", one("examples", mode("echo")),
			func(t *testing.T, g *gateway, u *upstreams) {
				big := strings.Repeat("0123456789", 20000) // several chunks
				r := do(t, "POST", g.url+"/", big)
				if r.status != 200 || r.body != big {
					t.Fatalf("got %d, %d bytes", r.status, len(r.body))
				}
				if n := u.backend.Requests(); n != 0 {
					t.Errorf("backend saw %d requests, want none", n)
				}
			}},
		{"http_routing canary", one("examples", `{"mode":"routing","dice":2}`),
			func(t *testing.T, g *gateway, u *upstreams) {
				r := do(t, "GET", g.url+"/", "", "host", "shop")
				if e := r.echo(t); e.Service != "canary" || e.Host != "shop-canary" {
					t.Fatalf("routed to %s with host %s, want canary with shop-canary", e.Service, e.Host)
				}
			}},
		{"http_routing stable", one("examples", `{"mode":"routing","dice":1}`),
			func(t *testing.T, g *gateway, u *upstreams) {
				if e := do(t, "GET", g.url+"/", "", "host", "shop").echo(t); e.Service != "backend" {
					t.Fatalf("routed to %s, want backend", e.Service)
				}
			}},
		{"http_auth_random", one("examples", mode("auth", "cluster", "auth")),
			func(t *testing.T, g *gateway, u *upstreams) {
				r := do(t, "GET", g.url+"/?b="+authBody(true), "")
				if r.status != 200 || r.echo(t).Headers["x-auth"] != "granted" {
					t.Fatalf("granted body: got %d %s", r.status, r.body)
				}
				r = do(t, "GET", g.url+"/?b="+authBody(false), "")
				if r.status != 403 || r.body != "access forbidden" || r.header.Get("Powered-By") != "proxy-wasm-go-sdk!!" {
					t.Fatalf("denied body: got %d %v %q", r.status, r.header, r.body)
				}
			}},
		{"http_auth_random unknown cluster", one("examples", mode("auth", "cluster", "nowhere")),
			func(t *testing.T, g *gateway, u *upstreams) {
				// The call is refused at once (BAD_ARGUMENT), as in
				// Envoy, and the example then lets the request go on.
				if r := do(t, "GET", g.url+"/", ""); r.status != 200 || r.echo(t).Path != "/" {
					t.Fatalf("got %d %q", r.status, r.body)
				}
			}},
		{"shared_data", one("examples", mode("shared")),
			func(t *testing.T, g *gateway, u *upstreams) {
				for want := 1; want <= 4; want++ {
					if got := do(t, "GET", g.url+"/", "").header.Get("X-Shared-Value"); got != fmt.Sprint(want) {
						t.Fatalf("request %d: x-shared-value %q", want, got)
					}
				}
			}},
		{"shared_queue", func(t *testing.T) []*hcmv3.HttpFilter {
			recv := "receiver_" + runName(t)
			return []*hcmv3.HttpFilter{
				wasmFilter(t, pluginConf(t, "examples", mode("queue-receiver"), vmID(recv))),
				wasmFilter(t, pluginConf(t, "examples", mode("queue-sender", "queue_vm", recv))),
			}
		}, func(t *testing.T, g *gateway, u *upstreams) {
			for i := 0; i < 5; i++ {
				do(t, "GET", g.url+"/", "", "x-queue", fmt.Sprint(i))
			}
			eventually(t, "5 queue items received", func() bool {
				return g.store.Counter("wasmcustom.queue_items_received").Value() == 5
			})
		}},
		{"metrics", one("examples", mode("metrics")),
			func(t *testing.T, g *gateway, u *upstreams) {
				for i := 1; i <= 3; i++ {
					e := do(t, "GET", g.url+"/", "", "my-custom-header", "foo").echo(t)
					if e.Headers["x-count"] != fmt.Sprint(i) {
						t.Fatalf("request %d: x-count %q", i, e.Headers["x-count"])
					}
				}
				if n := g.store.Counter("wasmcustom.custom_header_value_counts_value=foo_reporter=wasmgosdk").Value(); n != 3 {
					t.Errorf("counter = %d, want 3", n)
				}
				if v := g.store.Gauge("wasmcustom.last_header_length").Value(); v != 3 {
					t.Errorf("gauge = %d, want 3", v)
				}
				if s := g.store.Histogram("wasmcustom.header_length").Snapshot(); s.Count != 3 || s.Sum != 9 {
					t.Errorf("histogram = %d values summing to %v, want 3 and 9", s.Count, s.Sum)
				}
			}},
		{"properties", one("examples", mode("properties")),
			func(t *testing.T, g *gateway, u *upstreams) {
				h := do(t, "GET", g.url+"/p/q?x=1", "", "x-probe", "here").echo(t).Headers
				for k, want := range map[string]string{
					"x-prop-request.path":                                    "/p/q?x=1",
					"x-prop-request.url_path":                                "/p/q",
					"x-prop-request.method":                                  "GET",
					"x-prop-request.scheme":                                  "http",
					"x-prop-request.protocol":                                "HTTP/1.1",
					"x-prop-plugin_name":                                     "examples",
					"x-prop-plugin_root_id":                                  "examples_root",
					"x-prop-plugin_vm_id":                                    "examples_" + runName(t),
					"x-prop-node.id":                                         "waygate-test",
					"x-prop-cluster_name":                                    "backend",
					"x-prop-request.headers.x-probe":                         "here",
					"x-prop-xds.route_metadata.filter_metadata.istio.config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/all",
					"x-prop-xds.listener_direction":                          "2",
					"x-prop-missing":                                         "not found",
					"x-prop-set":                                             "kept",
				} {
					if h[k] != want {
						t.Errorf("%s = %q, want %q", k, h[k], want)
					}
				}
				if !strings.HasPrefix(h["x-prop-source.address"], "127.0.0.1:") || h["x-prop-source.port"] == "error" || h["x-prop-request.time"] == "error" {
					t.Errorf("source %q port %q time %q", h["x-prop-source.address"], h["x-prop-source.port"], h["x-prop-request.time"])
				}
				if h["x-prop-request.id"] == "" || h["x-prop-header-count"] == "" {
					t.Errorf("request.id %q, header count %q", h["x-prop-request.id"], h["x-prop-header-count"])
				}
			}},
		{"json_validation", one("examples", `{"mode":"json","requiredKeys":["id","token"]}`),
			func(t *testing.T, g *gateway, u *upstreams) {
				for _, c := range []struct {
					body, ct string
					status   int
					reply    string
				}{
					{`{"id":1,"token":"t"}`, "application/json", 200, ""},
					{`{"id":1}`, "application/json", 403, "invalid payload"},
					{`not json`, "application/json", 403, "invalid payload"},
					{`{"id":1,"token":"t"}`, "text/plain", 403, "content-type must be provided"},
				} {
					r := do(t, "POST", g.url+"/", c.body, "content-type", c.ct)
					if r.status != c.status || (c.reply != "" && r.body != c.reply) {
						t.Errorf("%s %s: got %d %q", c.ct, c.body, r.status, r.body)
					}
				}
			}},
		{"postpone_requests", one("examples", `{"mode":"postpone","tick_ms":20}`),
			func(t *testing.T, g *gateway, u *upstreams) {
				if r := do(t, "GET", g.url+"/", ""); r.status != 200 || r.echo(t).Service != "backend" {
					t.Fatalf("got %d", r.status)
				}
			}},
		{"dispatch_call_on_tick", one("examples", `{"mode":"tick","cluster":"web","tick_ms":10}`),
			func(t *testing.T, g *gateway, u *upstreams) {
				eventually(t, "answered tick callouts", func() bool {
					return g.store.Counter("wasmcustom.tick_call_responses").Value() >= 3 && u.web.Requests() >= 3
				})
			}},
		{"helloworld", one("examples", `{"mode":"hello","tick_ms":10}`),
			func(t *testing.T, g *gateway, u *upstreams) {
				eventually(t, "ticks", func() bool { return g.store.Counter("wasmcustom.ticks_hello").Value() >= 3 })
			}},
		{"foreign function", one("examples", mode("foreign")),
			func(t *testing.T, g *gateway, u *upstreams) {
				if r := do(t, "GET", g.url+"/", ""); r.header.Get("X-Foreign") != "ok" {
					t.Fatalf("x-foreign = %q, want compress to succeed", r.header.Get("X-Foreign"))
				}
			}},
		{"bad pointer", one("faults", ""),
			func(t *testing.T, g *gateway, u *upstreams) {
				r := do(t, "GET", g.url+"/", "", "x-fault", "badptr")
				if got := r.echo(t).Headers["x-badptr-status"]; got != "6" {
					t.Fatalf("proxy_log with a pointer outside memory returned %q, want 6 (INVALID_MEMORY_ACCESS)", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, cs := startUpstreams(t)
			g := startGateway(t, tt.plugins(t), cs...)
			tt.run(t, g, u)
		})
	}
}

// one is a chain with one Wasm filter.
func one(plugin, conf string) func(t *testing.T) []*hcmv3.HttpFilter {
	return func(t *testing.T) []*hcmv3.HttpFilter {
		return []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, plugin, conf))}
	}
}

// bodyCase posts body to the body echo backend and expects want back.
func bodyCase(method, body, _ string, want string, hdr ...string) func(t *testing.T, g *gateway, u *upstreams) {
	return func(t *testing.T, g *gateway, u *upstreams) {
		r := do(t, method, g.url+"/", body, append([]string{"host", "body"}, hdr...)...)
		if r.status != 200 || r.body != want {
			t.Fatalf("got %d %q, want %q", r.status, r.body, want)
		}
	}
}
