package hcm_test

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/accesslog"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// lockedBuffer is an io.Writer the test reads while the gateway writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func structOf(t *testing.T, fields map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(fields)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The access log prints the metadata of the route, cluster and endpoint
// a proxied request went through: the router records the endpoint's.
func TestAccessLogStaticMetadata(t *testing.T) {
	b, err := backend.Start(backend.Options{Service: "reviews", Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	rt := hcmtest.Prefix("/", "reviews")
	rt.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"istio": structOf(t, map[string]any{"config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"}),
	}}
	cl := hcmtest.StaticCluster("reviews", b.Addr())
	cl.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"istio": structOf(t, map[string]any{"services": []any{map[string]any{"name": "reviews", "namespace": "default"}}}),
	}}
	cl.LoadAssignment.Endpoints[0].LbEndpoints[0].Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"istio": structOf(t, map[string]any{"workload": "reviews-v2"}),
	}}
	f, err := accesslog.Compile("%METADATA(ROUTE:istio:config)% %CLUSTER_METADATA(istio:services)% %UPSTREAM_METADATA(istio:workload)%\n")
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	m := hcmtest.HCM(t, hcmtest.Routes(rt))
	m.AccessLog = []*accesslogv3.AccessLog{{Name: "metadata"}}
	g := hcmtest.Start(t, hcmtest.Options{
		HCM:       m,
		Clusters:  []*clusterv3.Cluster{cl},
		AccessLog: func(*accesslogv3.AccessLog) (hcm.AccessLogger, error) { return accesslog.New(f, out), nil },
	})

	resp, err := hcmtest.Client().Get(g.URL + "/reviews/0")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	want := `/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews [{"name":"reviews","namespace":"default"}] reviews-v2` + "\n"
	deadline := time.Now().Add(2 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := out.String(); !strings.HasSuffix(got, want) {
		t.Errorf("access log %q, want %q", got, want)
	}
}
