package accesslog

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

// istioJSON is the format Istio uses for meshConfig.accessLogEncoding=JSON.
var istioJSON = map[string]string{
	"start_time":                        "%START_TIME%",
	"method":                            "%REQ(:METHOD)%",
	"path":                              "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	"protocol":                          "%PROTOCOL%",
	"response_code":                     "%RESPONSE_CODE%",
	"response_flags":                    "%RESPONSE_FLAGS%",
	"response_code_details":             "%RESPONSE_CODE_DETAILS%",
	"connection_termination_details":    "%CONNECTION_TERMINATION_DETAILS%",
	"bytes_received":                    "%BYTES_RECEIVED%",
	"bytes_sent":                        "%BYTES_SENT%",
	"duration":                          "%DURATION%",
	"upstream_service_time":             "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
	"x_forwarded_for":                   "%REQ(X-FORWARDED-FOR)%",
	"user_agent":                        "%REQ(USER-AGENT)%",
	"request_id":                        "%REQ(X-REQUEST-ID)%",
	"authority":                         "%REQ(:AUTHORITY)%",
	"upstream_host":                     "%UPSTREAM_HOST%",
	"upstream_cluster":                  "%UPSTREAM_CLUSTER_RAW%",
	"upstream_local_address":            "%UPSTREAM_LOCAL_ADDRESS%",
	"downstream_local_address":          "%DOWNSTREAM_LOCAL_ADDRESS%",
	"downstream_remote_address":         "%DOWNSTREAM_REMOTE_ADDRESS%",
	"requested_server_name":             "%REQUESTED_SERVER_NAME%",
	"route_name":                        "%ROUTE_NAME%",
	"upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
}

func TestJSONFormat(t *testing.T) {
	f, err := CompileJSON(istioJSON)
	if err != nil {
		t.Fatal(err)
	}
	line := f.Append(nil, exchange(), end)
	if strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("want one line ending in a newline: %q", line)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	want := map[string]any{
		"start_time": "2016-04-15T20:17:00.310Z", "method": "POST", "path": "/api/v1/locations?from=1",
		"protocol": "HTTP/2", "response_code": 204.0, "response_flags": nil, "response_code_details": "via_upstream",
		"connection_termination_details": nil, "bytes_received": 154.0, "bytes_sent": 0.0, "duration": 226.0,
		"upstream_service_time": "100", "x_forwarded_for": "10.0.35.28", "user_agent": "nsq2http",
		"request_id": "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2", "authority": "locations", "upstream_host": "10.0.2.1:80",
		"upstream_cluster": "outbound|80||locations.default.svc.cluster.local", "upstream_local_address": nil,
		"downstream_local_address": "10.0.0.9:8443", "downstream_remote_address": "10.0.35.28:51234",
		"requested_server_name": "locations.example.com", "route_name": "locations-route",
		"upstream_transport_failure_reason": nil,
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d", len(got), len(want))
	}
	// Keys come out sorted, as from Envoy's Struct.
	if !strings.HasPrefix(string(line), `{"authority":"locations","bytes_received":154,"bytes_sent":0,"connection_termination_details":null,`) {
		t.Errorf("key order: %s", line)
	}
}

func TestJSONFormatShapes(t *testing.T) {
	tests := []struct {
		name   string
		format map[string]any
		typed  bool
		omit   bool
		want   string
	}{
		{"untyped renders strings and dashes", map[string]any{"code": "%RESPONSE_CODE%", "up": "%UPSTREAM_LOCAL_ADDRESS%"}, false, false,
			`{"code":"204","up":"-"}`},
		{"mixed text is a string", map[string]any{"d": "%DURATION%ms %UPSTREAM_LOCAL_ADDRESS%"}, true, false, `{"d":"226ms -"}`},
		{"nested objects", map[string]any{"req": map[string]any{"m": "%REQ(:METHOD)%", "len": "%REQ(USER-AGENT):3%"}, "v": 2.0, "ok": true}, true, false,
			`{"ok":true,"req":{"len":"nsq","m":"POST"},"v":2}`},
		{"metadata keeps its type", map[string]any{"jwt": "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload)%", "label": "%DYNAMIC_METADATA(istio.mixer:label)%"}, true, false,
			`{"jwt":{"iat":1700000000,"sub":"alice"},"label":"blue"}`},
		{"escaping", map[string]any{"q": "\"%REQ(X-QUOTE)%\"\t"}, true, false, `{"q":"\"a\"b\\c\u003c\"\t"}`},
		{"omit empty values", map[string]any{"a": "%UPSTREAM_LOCAL_ADDRESS%", "b": "%REQ(:METHOD)%", "c": "%ROUTE_NAME%"}, true, true,
			`{"b":"POST","c":"locations-route"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := structpb.NewStruct(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			f, err := CompileStruct(s, tt.typed)
			if err != nil {
				t.Fatal(err)
			}
			f.omitEmpty = tt.omit
			x := exchange()
			x.Request.Header.Set("X-Quote", `a"b\c<`)
			got := string(f.Append(nil, x, end))
			if got != tt.want+"\n" {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("invalid JSON: %s", got)
			}
		})
	}
	if _, err := CompileJSON(map[string]string{"a": "%NOPE%"}); err == nil || !strings.Contains(err.Error(), "access log json format a: position 0: unknown command operator %NOPE%") {
		t.Errorf("bad operator error = %v", err)
	}
}

func BenchmarkJSONFormat(b *testing.B) {
	f, err := CompileJSON(istioJSON)
	if err != nil {
		b.Fatal(err)
	}
	x := exchange()
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], x, end)
	}
}
