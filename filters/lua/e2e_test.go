package lua

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	luav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// script is the test script: it edits the request, answers locally on
// x-deny, calls the auth cluster on x-check, and marks the response.
const testScript = `
function envoy_on_request(request_handle)
  local h = request_handle:headers()
  h:add("x-lua-added", "yes")
  h:replace("x-lua-path", h:get(":path"))
  h:remove("x-secret")
  local n = 0
  for k, v in pairs(h) do n = n + 1 end
  h:add("x-lua-count", tostring(n))
  request_handle:streamInfo():dynamicMetadata():set("envoy.filters.http.lua", "seen", "yes")
  request_handle:logInfo("lua saw " .. h:get(":path"))
  if h:get("x-deny") then
    request_handle:respond({[":status"] = "403", ["x-lua"] = "denied"}, "denied by lua")
  end
  if h:get("x-check") then
    local headers, body = request_handle:httpCall("outbound|80||auth.default.svc.cluster.local", {[":method"] = "GET", [":path"] = "/check?x=1", [":authority"] = "auth"}, "", 5000)
    h:add("x-auth-status", headers[":status"])
    local down = request_handle:httpCall("no-such-cluster", {[":method"] = "GET", [":path"] = "/", [":authority"] = "x"}, "", 1000)
    h:add("x-down-status", down[":status"])
  end
end

function envoy_on_response(response_handle)
  local h = response_handle:headers()
  h:add("x-lua-response", "status=" .. h:get(":status"))
end
`

func startBackend(t *testing.T, service string) *backend.Server {
	t.Helper()
	b, err := backend.Start(backend.Options{Service: service, Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func inline(code string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: code}}
}

// luaGateway serves the Lua filter cfg with routes, in front of a web
// backend (cluster "web") and an auth backend (cluster "auth").
func luaGateway(t *testing.T, cfg *luav3.Lua, routes ...*routev3.Route) *hcmtest.Gateway {
	t.Helper()
	web, auth := startBackend(t, "web"), startBackend(t, "auth")
	routes = append(routes, hcmtest.Prefix("/", "web"))
	return hcmtest.Start(t, hcmtest.Options{
		HCM:      hcmtest.HCM(t, hcmtest.Routes(routes...), hcmtest.Filter(t, FilterName, cfg)),
		Clusters: []*clusterv3.Cluster{hcmtest.StaticCluster("web", web.Addr())},
		Env:      filters.Env{Upstream: clusters{"outbound|80||auth.default.svc.cluster.local": auth.Addr()}},
	})
}

// clusters reaches clusters by name over plain HTTP, as the gateway's
// own caller does for filters that call out.
type clusters map[string]string

func (c clusters) RoundTrip(ctx context.Context, cluster string, req *http.Request) (*http.Response, error) {
	addr, ok := c[cluster]
	if !ok {
		return nil, fmt.Errorf("cluster %q not found", cluster)
	}
	r := req.Clone(ctx)
	r.URL.Scheme, r.URL.Host = "http", addr
	return http.DefaultTransport.RoundTrip(r)
}

type echo struct {
	Service   string            `json:"service"`
	Headers   map[string]string `json:"headers"`
	BodyBytes int64             `json:"body_bytes"`
}

func send(t *testing.T, url string, hdr ...string) (*http.Response, string, echo) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hcmtest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e echo
	_ = json.Unmarshal(b, &e)
	return resp, string(b), e
}

func TestLuaScript(t *testing.T) {
	g := luaGateway(t, &luav3.Lua{DefaultSourceCode: inline(testScript)})

	resp, _, e := send(t, g.URL+"/some/path", "x-secret", "s3cret")
	if resp.StatusCode != 200 || e.Headers["x-lua-added"] != "yes" || e.Headers["x-lua-path"] != "/some/path" {
		t.Errorf("status %d, backend headers %v", resp.StatusCode, e.Headers)
	}
	if _, ok := e.Headers["x-secret"]; ok {
		t.Error("x-secret reached the backend")
	}
	if e.Headers["x-lua-count"] == "" || e.Headers["x-lua-count"] == "0" {
		t.Errorf("pairs over the headers counted %q", e.Headers["x-lua-count"])
	}
	if got := resp.Header.Get("x-lua-response"); got != "status=200" {
		t.Errorf("x-lua-response %q", got)
	}

	resp, body, e := send(t, g.URL+"/", "x-deny", "1")
	if resp.StatusCode != 403 || body != "denied by lua" || resp.Header.Get("x-lua") != "denied" || e.Service != "" {
		t.Errorf("respond(): %d %q %v", resp.StatusCode, body, resp.Header)
	}

	_, _, e = send(t, g.URL+"/", "x-check", "1")
	if e.Headers["x-auth-status"] != "200" || e.Headers["x-down-status"] != "503" {
		t.Errorf("httpCall: x-auth-status %q, x-down-status %q (want 200 and Envoy's 503 for a failed call)", e.Headers["x-auth-status"], e.Headers["x-down-status"])
	}
}

// A script error is logged and the request goes on; a route can turn the
// filter off or run its own script.
func TestLuaErrorsAndRoutes(t *testing.T) {
	perRoute := func(prefix string, pr *luav3.LuaPerRoute) *routev3.Route {
		r := hcmtest.Prefix(prefix, "web")
		r.TypedPerFilterConfig = map[string]*anypb.Any{FilterName: hcmtest.Any(t, pr)}
		return r
	}
	g := luaGateway(t, &luav3.Lua{
		DefaultSourceCode: inline(`function envoy_on_request(h) h:headers():add("x-default", "1") end`),
		SourceCodes: map[string]*corev3.DataSource{
			"named": inline(`function envoy_on_request(h) h:headers():add("x-named", "1") end`),
		},
	},
		perRoute("/off", &luav3.LuaPerRoute{Override: &luav3.LuaPerRoute_Disabled{Disabled: true}}),
		perRoute("/named", &luav3.LuaPerRoute{Override: &luav3.LuaPerRoute_Name{Name: "named"}}),
		perRoute("/broken", &luav3.LuaPerRoute{Override: &luav3.LuaPerRoute_SourceCode{SourceCode: inline(`function envoy_on_request(h) h:body() end`)}}),
		perRoute("/loop", &luav3.LuaPerRoute{Override: &luav3.LuaPerRoute_SourceCode{SourceCode: inline(`function envoy_on_request(h) while true do end end`)}}),
	)
	for _, tc := range []struct{ path, header string }{
		{"/", "x-default"},
		{"/named", "x-named"},
		{"/off", ""},
		{"/broken", ""},
	} {
		resp, _, e := send(t, g.URL+tc.path)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", tc.path, resp.StatusCode)
		}
		for _, h := range []string{"x-default", "x-named"} {
			if _, got := e.Headers[h]; got != (h == tc.header) {
				t.Errorf("%s: %s present=%v", tc.path, h, got)
			}
		}
	}
	old := scriptTimeout
	scriptTimeout = 200 * time.Millisecond
	defer func() { scriptTimeout = old }()
	if resp, _, _ := send(t, g.URL+"/loop"); resp.StatusCode != 200 {
		t.Errorf("a looping script: status %d, want the request to go on", resp.StatusCode)
	}
}

func TestLuaConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  *luav3.Lua
		want string
	}{
		{&luav3.Lua{DefaultSourceCode: inline("function envoy_on_request(h")}, "default_source_code"},
		{&luav3.Lua{SourceCodes: map[string]*corev3.DataSource{"x": inline("end end")}}, "source_codes[x]"},
		{&luav3.Lua{DefaultSourceCode: &corev3.DataSource{}}, "inline_string, inline_bytes or filename"},
	} {
		if _, err := New(tc.cfg, filters.Env{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %s", err, tc.want)
		}
	}
}

// metadata() reads the route's filter_metadata under the filter's name;
// streamInfo() reports the stream.
func TestLuaMetadataAndStreamInfo(t *testing.T) {
	r := hcmtest.Prefix("/meta", "web")
	r.Name = "meta-route"
	md, err := structpb.NewStruct(map[string]any{"team": "edge"})
	if err != nil {
		t.Fatal(err)
	}
	r.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{FilterName: md}}
	g := luaGateway(t, &luav3.Lua{DefaultSourceCode: inline(`
function envoy_on_request(h)
  local info = h:streamInfo()
  h:headers():add("x-team", h:metadata():get("team") or "none")
  h:headers():add("x-route", info:routeName())
  h:headers():add("x-proto", info:protocol())
  h:headers():add("x-tls", tostring(h:connection():ssl() ~= nil))
end`)}, r)
	_, _, e := send(t, g.URL+"/meta")
	want := map[string]string{"x-team": "edge", "x-route": "meta-route", "x-proto": "HTTP/1.1", "x-tls": "false"}
	for k, v := range want {
		if e.Headers[k] != v {
			t.Errorf("%s = %q, want %q", k, e.Headers[k], v)
		}
	}
}

// What a script must not be able to do: crash the process with a table
// that contains itself, reach another stream through a handle it kept,
// go on after respond(), or load with an error or a loop at top level.
func TestLuaMisuse(t *testing.T) {
	g := luaGateway(t, &luav3.Lua{DefaultSourceCode: inline(`
saved = nil
function envoy_on_request(h)
  local hs = h:headers()
  if hs:get("x-cycle") then
    local t = {1}
    t[2] = t
    h:streamInfo():dynamicMetadata():set("ns", "k", t)
  end
  if hs:get("x-keep") then saved = h end
  if hs:get("x-use-kept") and saved then
    if pcall(function() saved:headers():add("x-stolen", "1") end) then
      hs:add("x-kept-worked", "1")
    end
  end
  if hs:get("x-pcall-respond") then
    pcall(function() h:respond({[":status"] = "418"}, "tea") end)
    hs:add("x-after-respond", "1")
  end
end
function envoy_on_response(h)
  if h:headers():get("x-version") then
    pcall(function() h:respond({[":status"] = "500"}, "no") end)
  end
end`)})
	if resp, _, _ := send(t, g.URL+"/", "x-cycle", "1"); resp.StatusCode != 200 {
		t.Errorf("a cyclic table: status %d, want the request to go on", resp.StatusCode)
	}
	send(t, g.URL+"/", "x-keep", "1")
	if _, _, e := send(t, g.URL+"/", "x-use-kept", "1"); e.Headers["x-kept-worked"] != "" || e.Headers["x-stolen"] != "" {
		t.Errorf("a kept handle reached a later stream: %v", e.Headers)
	}
	resp, body, e := send(t, g.URL+"/", "x-pcall-respond", "1")
	if resp.StatusCode != 418 || body != "tea" || e.Headers["x-after-respond"] != "" {
		t.Errorf("pcall(respond): %d %q", resp.StatusCode, body)
	}
	if resp, _, _ := send(t, g.URL+"/"); resp.StatusCode != 200 {
		t.Errorf("respond() in the response path answered %d", resp.StatusCode)
	}

	old := scriptTimeout
	scriptTimeout = 200 * time.Millisecond
	defer func() { scriptTimeout = old }()
	for _, code := range []string{"local x = nil + 1", "while true do end"} {
		if _, err := New(&luav3.Lua{DefaultSourceCode: inline(code)}, filters.Env{}); err == nil {
			t.Errorf("%q loaded without an error", code)
		}
	}
}

// body() waits for the whole body, on both sides: the request script
// reads it, routes on it and replaces it; the response script reads the
// backend's answer and replaces it too.
func TestLuaBody(t *testing.T) {
	g := luaGateway(t, &luav3.Lua{DefaultSourceCode: inline(`
function envoy_on_request(h)
  local body = h:body()
  if body == nil then
    h:headers():add("x-body", "none")
    return
  end
  local s = body:getBytes(0, body:length())
  h:headers():add("x-body", s)
  if s == "deny" then
    h:respond({[":status"] = "403"}, "denied: " .. s)
  end
  body:setBytes(s .. s)
end
function envoy_on_response(h)
  local body = h:body()
  if body ~= nil and body:length() > 0 then
    h:headers():add("x-response-length", tostring(body:length()))
    body:setBytes("replaced")
  end
end`)})
	post := func(body string) (*http.Response, string, echo) {
		t.Helper()
		resp, err := hcmtest.Client().Post(g.URL+"/", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e echo
		_ = json.Unmarshal(b, &e)
		return resp, string(b), e
	}
	resp, body, _ := post("hello")
	if resp.StatusCode != 200 || body != "replaced" || resp.Header.Get("x-response-length") == "" {
		t.Errorf("POST hello: %d %q, x-response-length %q", resp.StatusCode, body, resp.Header.Get("x-response-length"))
	}
	if got := resp.Header.Get("Content-Length"); got != "" && got != "8" {
		t.Errorf("content-length %s for an 8-byte body", got)
	}
	// The backend's echo is replaced above; a second script-free look at
	// what it received comes from the request header the script set.
	resp, body, _ = post("deny")
	if resp.StatusCode != 403 || body != "denied: deny" {
		t.Errorf("POST deny: %d %q", resp.StatusCode, body)
	}
	if resp, _, _ := send(t, g.URL+"/"); resp.StatusCode != 200 {
		t.Errorf("GET without a body: %d", resp.StatusCode)
	}
}

// The request script's body changes reach the backend.
func TestLuaRequestBodyReplaced(t *testing.T) {
	g := luaGateway(t, &luav3.Lua{DefaultSourceCode: inline(`
function envoy_on_request(h)
  local body = h:body()
  h:headers():add("x-seen", body:getBytes(0, body:length()))
  body:setBytes("twelve bytes")
end`)})
	resp, err := hcmtest.Client().Post(g.URL+"/", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Headers["x-seen"] != "hi" || e.BodyBytes != 12 {
		t.Errorf("backend saw x-seen %q and %d body bytes, want hi and 12", e.Headers["x-seen"], e.BodyBytes)
	}
}
