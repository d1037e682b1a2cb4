package router

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
)

// sampleRouteConfigs extracts the RouteConfiguration JSON resources from a
// dump of what istiod sent a gateway: each resource is a block from a "{"
// line to a "}" line at the start of a line.
func sampleRouteConfigs(t *testing.T, file string) []*routev3.RouteConfiguration {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []*routev3.RouteConfiguration
	var block bytes.Buffer
	in := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && line == "{":
			in = true
			block.Reset()
			block.WriteString(line + "\n")
		case in:
			block.WriteString(line + "\n")
			if line == "}" {
				in = false
				if strings.Contains(block.String(), `"type.googleapis.com/envoy.config.route.v3.RouteConfiguration"`) {
					var a anypb.Any
					if err := protojson.Unmarshal(block.Bytes(), &a); err != nil {
						t.Fatalf("%s: %v", file, err)
					}
					rc := &routev3.RouteConfiguration{}
					if err := a.UnmarshalTo(rc); err != nil {
						t.Fatalf("%s: %v", file, err)
					}
					out = append(out, rc)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no RouteConfiguration found", file)
	}
	return out
}

func TestIstiodBookinfoSamples(t *testing.T) {
	const (
		productpage = "outbound|9080||productpage.default.svc.cluster.local"
		reviewsV1   = "outbound|9080|v1|reviews.default.svc.cluster.local"
		reviewsV2   = "outbound|9080|v2|reviews.default.svc.cluster.local"
		reviewsV3   = "outbound|9080|v3|reviews.default.svc.cluster.local"
		ratingsV1   = "outbound|9080|v1|ratings.default.svc.cluster.local"
	)
	for _, file := range []string{"testdata/bookinfo-gateway.xds.txt", "testdata/bookinfo-jwt-authz-wasm.xds.txt"} {
		t.Run(file, func(t *testing.T) {
			rc := sampleRouteConfigs(t, file)[0]
			tbl, err := Compile(rc)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if tbl.Name() != "http.8080" {
				t.Errorf("name %q", tbl.Name())
			}
			match := func(path string, kv ...string) *Route {
				return tbl.Match(newReq("GET", "bookinfo.example.com:8080", path, kv...), testConn)
			}
			for _, tt := range []struct {
				path    string
				kv      []string
				cluster string
			}{
				{"/productpage", nil, productpage},
				{"/productpage?u=normal", nil, productpage},
				{"/static/style.css", nil, productpage},
				{"/login", nil, productpage},
				{"/api/v1/products/1", nil, productpage},
				{"/reviews/1", []string{"end-user", "jason"}, reviewsV2},
				{"/ratings/1", nil, ratingsV1},
			} {
				r := match(tt.path, tt.kv...)
				if r == nil {
					t.Errorf("%s: no route", tt.path)
					continue
				}
				if c, _ := r.Target(newReq("GET", "h", tt.path, tt.kv...), 0); c != tt.cluster {
					t.Errorf("%s: cluster %q, want %q", tt.path, c, tt.cluster)
				}
			}
			if r := match("/productpagex"); r != nil {
				t.Errorf("/productpagex matched %v", r)
			}
			if r := match("/nothing"); r != nil {
				t.Errorf("/nothing matched %v", r)
			}

			pp := match("/productpage")
			f := pp.Forward
			if f.Timeout != 0 || f.MaxGrpcTimeout == nil || *f.MaxGrpcTimeout != 0 {
				t.Errorf("productpage timeouts: %v %v", f.Timeout, f.MaxGrpcTimeout)
			}
			rp := f.Retry
			if rp == nil || rp.NumRetries != 2 || !rp.On.Has(RetryConnectFailure|RetryRefusedStream|RetryGrpcUnavailable|RetryGrpcCancelled|RetryRetriableStatusCodes) ||
				rp.HostSelectionMaxAttempts != 5 || len(rp.HostPredicates) != 1 || rp.HostPredicates[0] != "envoy.retry_host_predicates.previous_hosts" {
				t.Errorf("productpage retry policy: %+v", rp)
			}
			if pp.Operation != "productpage.default.svc.cluster.local:9080/productpage" {
				t.Errorf("decorator: %q", pp.Operation)
			}
			if got := pp.Metadata.GetFilterMetadata()["istio"].GetFields()["config"].GetStringValue(); !strings.HasSuffix(got, "/virtual-service/bookinfo") {
				t.Errorf("metadata: %q", got)
			}
			if !pp.VHost().IncludeRequestAttemptCount {
				t.Error("include_request_attempt_count lost")
			}

			reviews := match("/reviews/2")
			if len(reviews.Forward.Weighted) != 2 {
				t.Fatalf("/reviews: want weighted clusters, got %+v", reviews.Forward)
			}
			if c, _ := reviews.Target(newReq("GET", "h", "/reviews/2"), 79); c != reviewsV1 {
				t.Errorf("weighted pick 79: %s", c)
			}
			if c, _ := reviews.Target(newReq("GET", "h", "/reviews/2"), 80); c != reviewsV3 {
				t.Errorf("weighted pick 80: %s", c)
			}

			jason := match("/ratings/1", "end-user", "jason")
			if got := jason.PerFilterConfig("envoy.filters.http.fault"); got != "fault:500" {
				t.Errorf("ratings for jason: fault config %v", got)
			}
			other := match("/ratings/1")
			if other.Forward.Timeout != 500*time.Millisecond || other.PerFilterConfig("envoy.filters.http.fault") != nil {
				t.Errorf("ratings: timeout %v fault %v", other.Forward.Timeout, other.PerFilterConfig("envoy.filters.http.fault"))
			}
			if tbl.ValidateClusters() {
				t.Error("validate_clusters is false in the sample")
			}
			want := []string{ratingsV1, reviewsV1, reviewsV2, reviewsV3, productpage}
			if got := tbl.Clusters(); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("Clusters() = %v", got)
			}
		})
	}
}
