package hcm_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"testing"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// startTrailers starts a backend, HTTP/1.1 and cleartext HTTP/2, that
// answers "hello" followed by an X-Checksum trailer, with the request
// trailers it received as X-Got-* headers.
func startTrailers(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, v := range r.Trailer {
			w.Header()["X-Got-"+k] = v
		}
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "hello")
		w.Header().Set("X-Checksum", "abc")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// get sends one request and reads the whole response, trailers included.
func get(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestBufferedBodyWithTrailers checks that a response body filter that
// buffers until the end of the body gets that end when the upstream's
// body ends with trailers, and that the trailers still follow.
func TestBufferedBodyWithTrailers(t *testing.T) {
	backend := startTrailers(t)
	gw := hcmtest.Start(t, hcmtest.Options{
		HCM:      hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "trailers")), tag(t, "a", "rewrite-resp=new")),
		Clusters: staticClusters([]*clusterSpec{{"trailers", backend}}),
	})
	for _, c := range []struct {
		name     string
		client   *http.Client
		trailers bool
	}{{"HTTP/1.1", hcmtest.Client(), true}, {"h2c", hcmtest.H2CClient(), true}} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", gw.URL+"/", nil)
			resp, body := get(t, c.client, req)
			if resp.StatusCode != 200 || body != "NEW:HELLO" {
				t.Errorf("got %d %q (content-length %q), want 200 %q", resp.StatusCode, body, resp.Header.Get("Content-Length"), "NEW:HELLO")
			}
			if c.trailers && resp.Trailer.Get("X-Checksum") != "abc" {
				t.Errorf("trailers %v, want X-Checksum: abc", resp.Trailer)
			}
		})
	}
}

// TestResponseTrailersFilters checks the response trailers phase: the
// filters see the upstream's trailers in reverse chain order, and what
// they change reaches the client.
func TestResponseTrailersFilters(t *testing.T) {
	backend := startTrailers(t)
	gw := hcmtest.Start(t, hcmtest.Options{
		HCM: hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "trailers")),
			tag(t, "a", "trailers"), tag(t, "b", "trailers"), tag(t, "c", "")),
		Clusters: staticClusters([]*clusterSpec{{"trailers", backend}}),
	})
	req, _ := http.NewRequest("GET", gw.URL+"/", nil)
	resp, body := get(t, hcmtest.H2CClient(), req)
	if resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("got %d %q, want 200 hello", resp.StatusCode, body)
	}
	if got := strings.Join(resp.Trailer.Values("X-Trl-Order"), ","); got != "b,a" {
		t.Errorf("x-trl-order trailer = %q, want b,a (trailers %v)", got, resp.Trailer)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("x-checksum trailer = %q, want abc", got)
	}
}

// TestRequestTrailers checks that request trailers reach the upstream,
// from HTTP/1.1 chunked and HTTP/2 clients, to HTTP/1.1 and HTTP/2
// upstreams, declared or not, and that request trailers filters see and
// change them on the way.
func TestRequestTrailers(t *testing.T) {
	backend := startTrailers(t)
	for _, up := range []struct {
		name    string
		cluster *clusterv3.Cluster
		proto   string
	}{
		{"HTTP/1.1 upstream", hcmtest.StaticCluster("trailers", backend), "HTTP/1.1"},
		{"HTTP/2 upstream", hcmtest.H2(t, hcmtest.StaticCluster("trailers", startRawH2(t))), "HTTP/2.0"},
	} {
		for _, chain := range []struct {
			name    string
			filters []*hcmv3.HttpFilter
			seen    string
		}{
			{"no filters", nil, ""},
			{"a trailers filter", []*hcmv3.HttpFilter{tag(t, "a", "req-trailers")}, "abc"},
		} {
			gw := hcmtest.Start(t, hcmtest.Options{
				HCM:      hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "trailers")), chain.filters...),
				Clusters: []*clusterv3.Cluster{up.cluster},
			})
			for _, c := range []struct {
				name     string
				client   *http.Client
				declared bool
			}{
				{"HTTP/1.1 client", hcmtest.Client(), true},
				{"HTTP/1.1 client, undeclared", hcmtest.Client(), false},
				{"h2c client", hcmtest.H2CClient(), true},
			} {
				t.Run(up.name+"/"+chain.name+"/"+c.name, func(t *testing.T) {
					var resp *http.Response
					var body string
					if c.declared {
						// A reader of unknown length: the body goes chunked.
						req, _ := http.NewRequest("POST", gw.URL+"/", io.MultiReader(strings.NewReader("payload")))
						req.Trailer = http.Header{"X-Req-Checksum": {"abc"}}
						resp, body = get(t, c.client, req)
					} else {
						resp, body = postUndeclared(t, gw.Addr)
					}
					if resp.StatusCode != 200 || body != "hello" {
						t.Fatalf("got %d %q", resp.StatusCode, body)
					}
					if got := resp.Header.Get("X-Proto"); got != up.proto {
						t.Errorf("upstream protocol %q, want %q", got, up.proto)
					}
					if got := resp.Header.Get("X-Got-X-Req-Checksum"); got != "abc" {
						t.Errorf("upstream got x-req-checksum trailer %q, want abc", got)
					}
					if got := resp.Header.Get("X-Got-X-Trl-Seen-A"); got != chain.seen {
						t.Errorf("upstream got x-trl-seen-a trailer %q, want %q", got, chain.seen)
					}
				})
			}
		}
	}
}

// postUndeclared sends, over a connection of its own, a chunked request
// whose X-Req-Checksum trailer no Trailer header announced (Go's client
// always announces them), and reads the answer.
func postUndeclared(t testing.TB, addr string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"7\r\npayload\r\n0\r\nX-Req-Checksum: abc\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
