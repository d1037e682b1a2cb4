package hcm_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// recorder is an access logger keeping what each exchange reported.
type recorder struct {
	mu   sync.Mutex
	seen []filters.StreamInfo
}

func (r *recorder) Log(x *filters.Exchange, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, x.Info)
}

func (r *recorder) last(t *testing.T) filters.StreamInfo {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := len(r.seen)
		var v filters.StreamInfo
		if n > 0 {
			v = r.seen[n-1]
		}
		r.mu.Unlock()
		if n > 0 {
			return v
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no access log entry")
	return filters.StreamInfo{}
}

// %BYTES_SENT% and %BYTES_RECEIVED% count what crossed the downstream
// connection, for local replies as for proxied responses.
func TestAccessLogByteCounts(t *testing.T) {
	b, err := backend.Start(backend.Options{Service: "a", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	rec := &recorder{}
	direct := &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/direct"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200,
			Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "twelve bytes"}}}},
	}
	rc := hcmtest.Routes(direct, hcmtest.Prefix("/", "a"))
	m := hcmtest.HCM(t, rc)
	m.AccessLog = []*accesslogv3.AccessLog{{Name: "test"}}
	g := hcmtest.Start(t, hcmtest.Options{
		HCM:       m,
		Clusters:  []*clusterv3.Cluster{hcmtest.StaticCluster("a", b.Addr())},
		AccessLog: func(*accesslogv3.AccessLog) (hcm.AccessLogger, error) { return rec, nil },
	})

	resp, err := hcmtest.Client().Get(g.URL + "/direct")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := rec.last(t).BytesSent; got != 12 {
		t.Errorf("local reply: bytes sent %d, want 12", got)
	}

	resp, err = hcmtest.Client().Post(g.URL+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", 1000)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	info := rec.last(t)
	if info.BytesReceived != 1000 {
		t.Errorf("bytes received %d, want 1000", info.BytesReceived)
	}
	if info.BytesSent != int64(len(body)) || resp.StatusCode != http.StatusOK {
		t.Errorf("proxied: bytes sent %d, client read %d (status %d)", info.BytesSent, len(body), resp.StatusCode)
	}
}
