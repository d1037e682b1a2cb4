package router_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

func startEcho(t testing.TB, o backend.Options) *backend.Server {
	t.Helper()
	if o.Version == "" {
		o.Version = "v1"
	}
	b, err := backend.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// startHandler serves h on loopback, HTTP/1.1 and cleartext HTTP/2.
func startHandler(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: p}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	addr, err := backend.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// start serves routes (in one virtual host, vh applied to it) over the
// given clusters.
func start(t testing.TB, vh func(*routev3.VirtualHost), routes []*routev3.Route, clusters ...*clusterv3.Cluster) *hcmtest.Gateway {
	t.Helper()
	rc := hcmtest.Routes(routes...)
	if vh != nil {
		vh(rc.VirtualHosts[0])
	}
	return hcmtest.Start(t, hcmtest.Options{HCM: hcmtest.HCM(t, rc), Clusters: clusters})
}

type result struct {
	status int
	header http.Header
	body   string
}

func (r result) echo(t testing.TB) backend.Echo {
	t.Helper()
	var e backend.Echo
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("status %d, body %q is not an echo: %v", r.status, r.body, err)
	}
	return e
}

// do sends one request; hdr holds name, value pairs.
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
