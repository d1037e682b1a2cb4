package router

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/waygate/waygate/filters"
)

const mutationLevels = `
request_headers_to_add:
- {header: {key: x-level, value: config}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
- {header: {key: x-trail, value: config}}
response_headers_to_add:
- {header: {key: x-level, value: config}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
virtual_hosts:
- name: vh
  domains: ["*"]
  request_headers_to_add:
  - {header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
  - {header: {key: x-trail, value: vhost}}
  response_headers_to_add:
  - {header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
  routes:
  - name: r
    match: {prefix: /}
    route:
      weighted_clusters:
        clusters:
        - name: a
          weight: 1
          request_headers_to_add:
          - {header: {key: x-level, value: cluster}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
          - {header: {key: x-trail, value: cluster}}
    request_headers_to_add:
    - {header: {key: x-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-trail, value: route}}
    response_headers_to_add:
    - {header: {key: x-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
`

func TestHeaderMutationOrder(t *testing.T) {
	for _, tt := range []struct {
		name      string
		prefix    string
		wantLevel string
		wantTrail []string
	}{
		// Envoy applies the route's mutations first and the route
		// configuration's last, so the least specific overwrite wins.
		{"default", "", "config", []string{"cluster", "route", "vhost", "config"}},
		{"most specific wins", "most_specific_header_mutations_wins: true\n", "route", []string{"cluster", "config", "vhost", "route"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tbl := compileYAML(t, tt.prefix+mutationLevels)
			x := &filters.Exchange{Request: *newReq("GET", "h", "/")}
			r := tbl.Match(&x.Request, testConn)
			_, wc := r.Target(&x.Request, 0)
			r.ApplyRequestHeaders(x, wc)
			if got := x.Request.Header.Get("X-Level"); got != tt.wantLevel {
				t.Errorf("x-level = %q, want %q", got, tt.wantLevel)
			}
			if got := x.Request.Header["X-Trail"]; !reflect.DeepEqual(got, tt.wantTrail) {
				t.Errorf("x-trail = %q, want %q", got, tt.wantTrail)
			}
			x.Response = filters.Response{Status: 200}
			r.ApplyResponseHeaders(x, wc)
			if got := x.Response.Header.Get("X-Level"); got != tt.wantLevel {
				t.Errorf("response x-level = %q, want %q", got, tt.wantLevel)
			}
		})
	}
}

func TestAppendActions(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - name: r
    match: {prefix: /}
    route: {cluster: c}
    request_headers_to_remove: [x-remove]
    request_headers_to_add:
    - {header: {key: x-append, value: new}}
    - {header: {key: x-append-absent, value: new}}
    - {header: {key: x-absent-existing, value: new}, append_action: ADD_IF_ABSENT}
    - {header: {key: x-absent-missing, value: new}, append_action: ADD_IF_ABSENT}
    - {header: {key: x-overwrite, value: new}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-overwrite-missing, value: new}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-if-exists, value: new}, append_action: OVERWRITE_IF_EXISTS}
    - {header: {key: x-if-exists-missing, value: new}, append_action: OVERWRITE_IF_EXISTS}
    - {header: {key: x-legacy-append, value: new}, append: true}
    - {header: {key: x-legacy-overwrite, value: new}, append: false}
    - {header: {key: x-empty, value: ""}}
    - {header: {key: x-keep-empty, value: ""}, keep_empty_value: true}
    - {header: {key: x-empty-op, value: "%REQ(x-missing)%"}}
    - {header: {key: x-remove, value: readded}}
    - {header: {key: x-copy, value: "%REQ(x-overwrite)%"}}
`)
	x := &filters.Exchange{Request: *newReq("GET", "h", "/",
		"x-append", "old",
		"x-absent-existing", "old",
		"x-overwrite", "old",
		"x-if-exists", "old",
		"x-legacy-append", "old",
		"x-legacy-overwrite", "old",
		"x-remove", "old",
	)}
	r := tbl.Match(&x.Request, testConn)
	r.ApplyRequestHeaders(x, nil)
	want := http.Header{
		"X-Append":            {"old", "new"},
		"X-Append-Absent":     {"new"},
		"X-Absent-Existing":   {"old"},
		"X-Absent-Missing":    {"new"},
		"X-Overwrite":         {"new"},
		"X-Overwrite-Missing": {"new"},
		"X-If-Exists":         {"new"},
		"X-Legacy-Append":     {"old", "new"},
		"X-Legacy-Overwrite":  {"new"},
		"X-Keep-Empty":        {""},
		"X-Remove":            {"readded"},
		// Values are computed against the headers as they were before
		// this level's overwrites.
		"X-Copy": {"old"},
	}
	if !reflect.DeepEqual(x.Request.Header, want) {
		t.Errorf("headers\n got %v\nwant %v", x.Request.Header, want)
	}
}

func TestHeaderValueOperators(t *testing.T) {
	tbl := compileYAML(t, `
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - name: r
    match: {prefix: /}
    route: {cluster: c}
    request_headers_to_add:
    - {header: {key: x-remote, value: "%DOWNSTREAM_REMOTE_ADDRESS%"}}
    - {header: {key: x-remote-ip, value: "ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}}
    - {header: {key: x-local, value: "%DOWNSTREAM_LOCAL_ADDRESS%"}}
    - {header: {key: x-req, value: "%REQ(x-user)%/%REQ(x-none?x-user)%/%REQ(:path)%/%REQ(x-user):2%"}}
    - {header: {key: x-proto, value: "%PROTOCOL%"}}
    - {header: {key: x-host, value: "%HOSTNAME%"}}
    - {header: {key: x-start, value: "%START_TIME%"}}
    - {header: {key: x-start-fmt, value: "%START_TIME(%Y/%m/%d %H:%M:%E3S %s)%"}}
    - {header: {key: x-percent, value: "100%% %PROTOCOL%"}}
    - {header: {key: x-upstream, value: "%UPSTREAM_HOST%"}}
    response_headers_to_add:
    - {header: {key: x-upstream, value: "%UPSTREAM_HOST%"}}
    - {header: {key: x-code, value: "%RESPONSE_CODE% %RESP(x-backend)%"}}
`)
	start := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	x := &filters.Exchange{
		Request:    *newReq("GET", "h", "/p?q", "x-user", "alice"),
		Downstream: *testConn,
		Info:       filters.StreamInfo{Start: start},
	}
	r := tbl.Match(&x.Request, testConn)
	r.ApplyRequestHeaders(x, nil)
	want := map[string]string{
		"X-Remote":    "10.1.2.3:50000",
		"X-Remote-Ip": "ip=10.1.2.3",
		"X-Local":     "10.0.0.1:8080",
		"X-Req":       "alice/alice//p?q/al",
		"X-Proto":     "HTTP/1.1",
		"X-Host":      hostname,
		"X-Start":     "2026-03-04T05:06:07.890Z",
		"X-Start-Fmt": "2026/03/04 05:06:07.890 1772600767",
		"X-Percent":   "100% HTTP/1.1",
		// The upstream is not chosen yet when request headers are
		// finalized; an empty value drops the header.
		"X-Upstream": "",
	}
	for k, v := range want {
		if got := x.Request.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	x.Info.UpstreamHost = "10.9.9.9:9080"
	x.Response = filters.Response{Status: 503, Header: http.Header{"X-Backend": {"b1"}}}
	r.ApplyResponseHeaders(x, nil)
	if got := x.Response.Header.Get("X-Upstream"); got != "10.9.9.9:9080" {
		t.Errorf("response x-upstream = %q", got)
	}
	if got := x.Response.Header.Get("X-Code"); got != "503 b1" {
		t.Errorf("response x-code = %q", got)
	}
}
