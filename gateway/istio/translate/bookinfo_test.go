package translate

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/waygate/waygate/gateway/istio"
)

// istiodSample holds the resources of the istiod xDS dump: clusters in
// protobuf text and the route configuration in JSON.
type istiodSample struct {
	clusters     []*clusterv3.Cluster
	listenerText string
	route        *routev3.RouteConfiguration
}

// Istio-only cluster fields the dump carries that Waygate does not
// generate: network filters (metadata exchange) and the stats name.
var istioOnlyCluster = regexp.MustCompile(`(?s)\nfilters: \{\n.*?\n\}\n|\nalt_stat_name: "[^"]*"`)

func readIstiodSample(t *testing.T, path string) istiodSample {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s istiodSample
	// Text resources are separated by blank lines; JSON ones run from a
	// "{" line to a "}" line.
	var blocks []string
	var cur []string
	inJSON := false
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, strings.Join(cur, "\n"))
		}
		cur = nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "{" && !inJSON:
			flush()
			inJSON = true
			cur = append(cur, line)
		case line == "}" && inJSON:
			cur = append(cur, line)
			flush()
			inJSON = false
		case line == "" && !inJSON:
			flush()
		default:
			cur = append(cur, line)
		}
	}
	flush()
	for _, block := range blocks {
		switch {
		case block == "":
		case strings.HasPrefix(block, "{"):
			// JSON resources are Any-wrapped ("@type").
			a := &anypb.Any{}
			if err := protojson.Unmarshal([]byte(block), a); err != nil {
				t.Fatalf("JSON resource %.60q: %v", block, err)
			}
			m, err := a.UnmarshalNew()
			if err != nil {
				t.Fatal(err)
			}
			switch m := m.(type) {
			case *routev3.RouteConfiguration:
				s.route = m
			case *clusterv3.Cluster:
				m.AltStatName = ""
				s.clusters = append(s.clusters, m)
			}
		case strings.HasPrefix(block, "name: \"0.0.0.0_"):
			s.listenerText = block
		default:
			// Blocks may hold a cluster preceded by a listener or JSON;
			// split on the first line of each cluster.
			text := istioOnlyCluster.ReplaceAllString("\n"+block+"\n", "\n")
			c := &clusterv3.Cluster{}
			if err := prototext.Unmarshal([]byte(text), c); err != nil {
				t.Fatalf("cluster block %.60q: %v", block, err)
			}
			s.clusters = append(s.clusters, c)
		}
	}
	return s
}

// loadFiles merges the resources of several YAML files, failing on any
// error finding.
func loadFiles(t *testing.T, paths ...string) *istio.Config {
	t.Helper()
	all := &istio.Config{}
	for _, p := range paths {
		cfg := loadCase(t, p)
		all.Gateways = append(all.Gateways, cfg.Gateways...)
		all.VirtualServices = append(all.VirtualServices, cfg.VirtualServices...)
		all.DestinationRules = append(all.DestinationRules, cfg.DestinationRules...)
		all.ServiceEntries = append(all.ServiceEntries, cfg.ServiceEntries...)
		all.WorkloadEntries = append(all.WorkloadEntries, cfg.WorkloadEntries...)
	}
	return all
}

// TestBookinfoMatchesIstiod translates Bookinfo and checks the result
// against what istiod generated for it: the same listener, route and
// cluster names, route configurations equal field for field, and
// clusters equal but for Istio telemetry (metadata exchange filters and
// stats names).
func TestBookinfoMatchesIstiod(t *testing.T) {
	upstream := filepath.Join("..", "testdata", "bookinfo")
	cfg := loadFiles(t,
		filepath.Join(upstream, "bookinfo-gateway.yaml"),
		filepath.Join(upstream, "destination-rule-all.yaml"),
		filepath.Join(upstream, "virtual-service-all-v1.yaml"),
		filepath.Join("testdata", "bookinfo", "services.yaml"),
		filepath.Join("testdata", "bookinfo", "reviews-edge.yaml"),
	)
	res, warnings := Translate(cfg, Proxy{ID: "router~10.0.0.1~istio-ingressgateway~istio-system.svc.cluster.local"})
	for _, w := range warnings {
		t.Errorf("warning: %s", w)
	}
	want := readIstiodSample(t, filepath.Join("testdata", "bookinfo", "istiod-bookinfo-gateway.xds.txt"))
	if want.route == nil || len(want.clusters) != 15 || want.listenerText == "" {
		t.Fatalf("istiod sample: route %v, %d clusters, listener %v; want a route, 15 clusters and a listener",
			want.route != nil, len(want.clusters), want.listenerText != "")
	}

	if len(res.Listeners) != 1 || res.Listeners[0].Name != "0.0.0.0_8080" {
		t.Fatalf("listeners = %v, want one 0.0.0.0_8080", names(res.Listeners, func(l any) string { return l.(interface{ GetName() string }).GetName() }))
	}
	if !strings.Contains(want.listenerText, `route_config_name: "http.8080"`) {
		t.Fatal("the istiod listener does not name http.8080; sample changed?")
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := res.Listeners[0].FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	if got := hcm.GetRds().GetRouteConfigName(); got != "http.8080" {
		t.Errorf("RDS name = %q, want http.8080", got)
	}
	// The HTTP filters Waygate emits appear in istiod's chain in the same order.
	var istiodFilters []string
	sc := bufio.NewScanner(bytes.NewReader([]byte(want.listenerText)))
	inFilter := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "http_filters: {" {
			inFilter = true
			continue
		}
		if inFilter && strings.HasPrefix(line, "name: ") {
			istiodFilters = append(istiodFilters, strings.Trim(strings.TrimPrefix(line, "name: "), `"`))
			inFilter = false
		}
	}
	var ours []string
	for _, f := range hcm.HttpFilters {
		ours = append(ours, f.Name)
	}
	var common []string
	for _, f := range istiodFilters {
		if slices.Contains(ours, f) {
			common = append(common, f)
		}
	}
	if !slices.Equal(common, ours) {
		t.Errorf("HTTP filters %v are not in istiod's order %v", ours, istiodFilters)
	}
	for _, check := range []struct {
		name string
		ok   bool
	}{
		{"stat_prefix", hcm.StatPrefix == "outbound_0.0.0.0_8080"},
		{"use_remote_address", hcm.GetUseRemoteAddress().GetValue() && strings.Contains(want.listenerText, "use_remote_address: {\n          value: true")},
		{"normalize_path", hcm.GetNormalizePath().GetValue()},
		{"websocket upgrade", len(hcm.UpgradeConfigs) == 1 && hcm.UpgradeConfigs[0].UpgradeType == "websocket"},
		{"path_with_escaped_slashes_action", hcm.PathWithEscapedSlashesAction == hcmv3.HttpConnectionManager_KEEP_UNCHANGED},
		{"forward_client_cert_details", hcm.ForwardClientCertDetails == hcmv3.HttpConnectionManager_SANITIZE_SET},
	} {
		if !check.ok {
			t.Errorf("HTTP connection manager %s differs from istiod's", check.name)
		}
	}

	if len(res.Routes) != 1 {
		t.Fatalf("got %d route configurations, want 1", len(res.Routes))
	}
	if diff := protoDiff(t, want.route, res.Routes[0]); diff != "" {
		t.Errorf("route configuration http.8080 differs from istiod's (-istiod +waygate):\n%s", diff)
	}

	var wantNames, gotNames []string
	wantByName := map[string]*clusterv3.Cluster{}
	for _, c := range want.clusters {
		wantNames = append(wantNames, c.Name)
		wantByName[c.Name] = c
	}
	for _, c := range res.Clusters {
		gotNames = append(gotNames, c.Name)
	}
	slices.Sort(wantNames)
	if !slices.Equal(wantNames, gotNames) {
		t.Fatalf("clusters:\n got %v\nwant %v", gotNames, wantNames)
	}
	for _, c := range res.Clusters {
		if diff := protoDiff(t, wantByName[c.Name], c); diff != "" {
			t.Errorf("cluster %s differs from istiod's (-istiod +waygate):\n%s", c.Name, diff)
		}
	}

	// Every EDS cluster has its endpoints, and subsets select by label.
	eps := map[string]int{}
	for _, e := range res.Endpoints {
		for _, l := range e.Endpoints {
			eps[e.ClusterName] += len(l.LbEndpoints)
		}
	}
	for name, n := range map[string]int{
		"outbound|9080||reviews.default.svc.cluster.local":         3,
		"outbound|9080|v2|reviews.default.svc.cluster.local":       1,
		"outbound|9080|v2-mysql|ratings.default.svc.cluster.local": 0,
		"outbound|9080|v1|productpage.default.svc.cluster.local":   1,
	} {
		if eps[name] != n {
			t.Errorf("%s has %d endpoints, want %d", name, eps[name], n)
		}
	}
	if len(res.Endpoints) != len(res.Clusters)-1 {
		t.Errorf("%d ClusterLoadAssignments for %d EDS clusters", len(res.Endpoints), len(res.Clusters)-1)
	}
}

func names[T any](list []T, name func(any) string) []string {
	var out []string
	for _, x := range list {
		out = append(out, name(x))
	}
	return out
}

// protoDiff returns "" when a and b are equal, else the first lines where
// their indented JSON forms differ.
func protoDiff(t *testing.T, a, b proto.Message) string {
	t.Helper()
	if proto.Equal(a, b) {
		return ""
	}
	opts := protojson.MarshalOptions{Multiline: true, Indent: "  "}
	aj, err := opts.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	bj, err := opts.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	al, bl := strings.Split(string(aj), "\n"), strings.Split(string(bj), "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)) && len(out) < 40; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if strings.TrimSpace(x) != strings.TrimSpace(y) {
			out = append(out, "- "+x, "+ "+y)
		}
	}
	return strings.Join(out, "\n")
}
