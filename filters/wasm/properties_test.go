package wasm

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

func init() {
	testPlugins = append(testPlugins, struct {
		name, dir string
		reactor   bool
	}{"audit", "audit", true})
}

// answer is one property as the audit plugin read it: the hostcall's
// status and the bytes returned.
type answer struct {
	status int
	val    []byte
}

// parseAnswers reads the plugin's "<path> <status> <hex>" lines.
func parseAnswers(t *testing.T, lines []string) map[string]answer {
	t.Helper()
	out := map[string]answer{}
	for _, l := range lines {
		if l == "" {
			continue
		}
		// A header value loses its trailing space: an empty value.
		f := strings.SplitN(l+" ", " ", 3)
		if len(f) != 3 {
			t.Fatalf("bad answer line %q", l)
		}
		f[2] = strings.TrimSpace(f[2])
		st, _ := strconv.Atoi(f[1])
		v, err := hex.DecodeString(f[2])
		if err != nil {
			t.Fatalf("bad answer line %q: %v", l, err)
		}
		out[f[0]] = answer{st, v}
	}
	return out
}

// Checks of an answer.
func isStr(want string) func(answer) bool {
	return func(a answer) bool { return a.status == 0 && string(a.val) == want }
}

func isInt(want int64) func(answer) bool {
	return func(a answer) bool {
		return a.status == 0 && len(a.val) == 8 && int64(binary.LittleEndian.Uint64(a.val)) == want
	}
}

func isIntIn(lo, hi int64) func(answer) bool {
	return func(a answer) bool {
		if a.status != 0 || len(a.val) != 8 {
			return false
		}
		n := int64(binary.LittleEndian.Uint64(a.val))
		return lo <= n && n <= hi
	}
}

func isDouble(want float64) func(answer) bool {
	return func(a answer) bool {
		return a.status == 0 && len(a.val) == 8 && math.Float64frombits(binary.LittleEndian.Uint64(a.val)) == want
	}
}

func isStatus(want int) func(answer) bool { return func(a answer) bool { return a.status == want } }

// pairs checks a map-valued answer holds the given pairs (among others).
func hasPairs(kv ...string) func(answer) bool {
	return func(a answer) bool {
		if a.status != 0 {
			return false
		}
		got := map[string]string{}
		if err := decodeMap(a.val, func(k, v []byte) { got[string(k)] = string(v) }); err != nil {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if v, ok := got[kv[i]]; !ok || v != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// TestPropertyEncodings reads Envoy's attributes from a plugin on the raw
// ABI, during the request and the response, and checks each value's
// bytes as Envoy's Wasm host serializes them.
func TestPropertyEncodings(t *testing.T) {
	backend := startEcho(t, "backend")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		hcmtest.StaticCluster("backend", backend.Addr()), hcmtest.StaticCluster("body", deadAddr))
	backendPort, _ := strconv.Atoi(backend.Addr()[strings.LastIndex(backend.Addr(), ":")+1:])
	now := time.Now().UnixNano()

	request := []struct {
		path  string
		check func(answer) bool
	}{
		{"request/path", isStr("/p/a?x=1")},
		{"request/url_path", isStr("/p/a")},
		{"request/query", isStr("x=1")},
		{"request/host", isStr("shop")},
		{"request/method", isStr("POST")},
		{"request/scheme", isStr("http")},
		{"request/protocol", isStr("HTTP/1.1")},
		{"request/useragent", isStr("audit-client")},
		{"request/referer", isStr("http://ref/")},
		{"request/headers/x-multi", isStr("a,b")},
		{"request/headers", hasPairs("x-multi", "a,b", ":method", "POST", ":path", "/p/a?x=1")},
		{"request/size", isInt(5)},
		{"request/total_size", isIntIn(60, 4096)},
		{"request/time", isIntIn(now-int64(time.Minute), now+int64(time.Minute))},
		{"request/duration", isIntIn(0, int64(time.Minute))},
		{"source/port", isIntIn(1, 65535)},
		{"destination/port", isIntIn(1, 65535)},
		{"source/address", func(a answer) bool { _, err := netip.ParseAddrPort(string(a.val)); return a.status == 0 && err == nil }},
		{"connection/id", isIntIn(1, math.MaxInt64)},
		{"connection/mtls", func(a answer) bool { return a.status == 0 && string(a.val) == "\x00" }},
		{"connection/requested_server_name", isStr("")},
		{"connection/tls_version", isStatus(1)},
		{"connection/subject_peer_certificate", isStatus(1)},
		{"upstream/address", isStatus(1)},
		{"plugin_name", isStr("audit")},
		{"plugin_root_id", isStr("audit_root")},
		{"plugin_vm_id", isStr("audit_" + runName(t))},
		{"cluster_name", isStr("backend")},
		{"xds/cluster_name", isStr("backend")},
		{"route_name", isStr("")},
		{"xds/virtual_host_name", isStr("all")},
		{"xds/listener_name", isStr("test")},
		{"xds/filter_chain_name", isStr("")},
		{"node/id", isStr("waygate-test")},
		{"node/cluster", isStr("waygate-gw.istio-system")},
		{"node/locality/zone", isStr("z1")},
		{"node/metadata/NAMESPACE", isStr("istio-system")},
		{"node/metadata/REPLICAS", isDouble(2)},
		{"node/metadata/LABELS", hasPairs("app", "gw")},
		{"node/metadata/LABELS/app", isStr("gw")},
		{"node/metadata", hasPairs("NAMESPACE", "istio-system")},
		{"node/metadata/NONE", isStatus(1)},
		{"node/no_such_field", isStatus(1)},
		{"node/id/deeper", isStatus(1)},
		{"wasm/mine", isStr("kept")},
		{"metadata/filter_metadata/envoy.filters.http.wasm.properties", isStatus(1)},
		{"response/code", isStatus(1)},
		{"no/such", isStatus(1)},
	}
	var paths []string
	for _, c := range request {
		paths = append(paths, c.path)
	}
	r := do(t, "POST", g.url+"/p/a?x=1", "hello", "host", "shop", "x-props", strings.Join(paths, ","),
		"x-set-props", "wasm/mine=kept", "user-agent", "audit-client", "referer", "http://ref/", "x-multi", "a", "x-multi", "b")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := parseAnswers(t, strings.Split(r.body, "\n"))
	for _, c := range request {
		a, ok := got[c.path]
		if !ok {
			t.Errorf("%s: no answer", c.path)
			continue
		}
		if !c.check(a) {
			t.Errorf("%s = status %d %q", c.path, a.status, a.val)
		}
	}

	// Response attributes, read in proxy_on_response_headers.
	response := []struct {
		path  string
		check func(answer) bool
	}{
		{"response/code", isInt(200)},
		{"response/code_details", isStr("via_upstream")},
		{"response/flags", isInt(0)},
		{"response/grpc_status", isInt(2)},
		{"response/headers/content-type", isStr("application/json")},
		{"response/headers", hasPairs(":status", "200", "content-type", "application/json")},
		{"upstream/address", isStr(backend.Addr())},
		{"upstream/port", isInt(int64(backendPort))},
		{"upstream/request_attempt_count", isInt(1)},
		{"request/path", isStr("/r")},
	}
	paths = paths[:0]
	for _, c := range response {
		paths = append(paths, c.path)
	}
	r = do(t, "GET", g.url+"/r", "", "x-resp-props", strings.Join(paths, ","))
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got = parseAnswers(t, r.header.Values("X-Prop"))
	for _, c := range response {
		if a, ok := got[c.path]; !ok || !c.check(a) {
			t.Errorf("at response: %s = status %d %q", c.path, a.status, a.val)
		}
	}

	// An upstream that refuses connections: the gateway's 503 carries
	// Envoy's UF flag bit and the gRPC status HTTP 503 maps to.
	r = do(t, "GET", g.url+"/", "", "host", "body", "x-resp-props", "response/code,response/flags,response/grpc_status")
	got = parseAnswers(t, r.header.Values("X-Prop"))
	if a := got["response/code"]; !isInt(503)(a) {
		t.Errorf("failed upstream: response/code = %d %q", a.status, a.val)
	}
	if a := got["response/flags"]; a.status != 0 || len(a.val) != 8 || binary.LittleEndian.Uint64(a.val)&responseFlagBit["UF"] == 0 {
		t.Errorf("failed upstream: response/flags = %d %x, want the UF bit", a.status, a.val)
	}
	if a := got["response/grpc_status"]; !isInt(14)(a) {
		t.Errorf("failed upstream: response/grpc_status = %d %q", a.status, a.val)
	}
}
