package hcm_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// startTrailers starts an HTTP/1.1 backend that answers "hello" in a
// chunked body followed by an X-Checksum trailer, and echoes the
// X-Req-Checksum request trailer it received in its X-Got-Trailer
// trailer (a header would be sent before the request body ended).
func startTrailers(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Checksum, X-Got-Trailer")
		_, _ = io.WriteString(w, "hello")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set("X-Got-Trailer", r.Trailer.Get("X-Req-Checksum"))
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
	}{{"HTTP/1.1", hcmtest.Client(), false}, {"h2c", hcmtest.H2CClient(), true}} {
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
