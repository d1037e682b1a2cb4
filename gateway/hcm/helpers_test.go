package hcm_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// startEcho starts an echo backend for the test.
func startEcho(t testing.TB, service string) *backend.Server {
	t.Helper()
	b, err := backend.Start(backend.Options{Service: service, Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// startBodyEcho starts a backend that answers with the Content-Length
// and the body it received, for tests of body rewrites.
func startBodyEcho(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "cl=%s body=%s", r.Header.Get("Content-Length"), b)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// result is what a client observed of one exchange.
type result struct {
	status int
	header http.Header
	body   string
}

// echo decodes the body as the echo backend's description.
func (r result) echo(t testing.TB) backend.Echo {
	t.Helper()
	var e backend.Echo
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("status %d, body %q is not an echo: %v", r.status, r.body, err)
	}
	return e
}

// do sends one request. hdr holds name, value pairs.
func do(t testing.TB, c *http.Client, method, url, body string, hdr ...string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// clusterSpec is a static cluster: a name and endpoint addresses.
type clusterSpec struct {
	name  string
	addrs string // comma-separated host:port
}

func staticClusters(specs []*clusterSpec) []*clusterv3.Cluster {
	var out []*clusterv3.Cluster
	for _, s := range specs {
		out = append(out, hcmtest.StaticCluster(s.name, strings.Split(s.addrs, ",")...))
	}
	return out
}
