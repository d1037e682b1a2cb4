package accesslog

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/waygate/waygate/filters"
)

type route struct{ name string }

func (r route) Name() string             { return r.name }
func (route) VirtualHost() string        { return "bookinfo" }
func (route) Cluster() string            { return "" }
func (route) PerFilterConfig(string) any { return nil }

var start = time.Date(2016, 4, 15, 20, 17, 0, 310_123_456, time.UTC)

// exchange is the request of Envoy's documented example line, through an
// Istio ingress gateway.
func exchange() *filters.Exchange {
	x := &filters.Exchange{
		Request: filters.Request{
			Method: "POST", Scheme: "https", Authority: "locations", Path: "/api/v1/locations?from=1",
			Protocol: "HTTP/2",
			Header: http.Header{
				"X-Forwarded-For": {"10.0.35.28"},
				"User-Agent":      {"nsq2http"},
				"X-Request-Id":    {"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"},
			},
			ID: "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2",
		},
		Response: filters.Response{
			Status:  204,
			Header:  http.Header{"X-Envoy-Upstream-Service-Time": {"100"}},
			Trailer: http.Header{"Grpc-Status": {"0"}},
		},
		Downstream: filters.Connection{
			RemoteAddr:       netip.MustParseAddrPort("[::ffff:10.0.35.28]:51234"),
			LocalAddr:        netip.MustParseAddrPort("10.0.0.9:8443"),
			DirectRemoteAddr: netip.MustParseAddrPort("10.0.0.5:40000"),
			TLS: &tls.ConnectionState{
				ServerName: "locations.example.com",
				Version:    tls.VersionTLS13,
				PeerCertificates: []*x509.Certificate{{URIs: []*url.URL{
					{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/default/sa/client"},
				}}},
			},
		},
		Route: route{"locations-route"},
		Info: filters.StreamInfo{
			Start:               start,
			ResponseCodeDetails: "via_upstream",
			UpstreamCluster:     "outbound|80||locations.default.svc.cluster.local",
			UpstreamHost:        "10.0.2.1:80",
			BytesReceived:       154,
			Attempts:            1,
		},
	}
	x.SetMetadata("envoy.filters.http.jwt_authn", "payload", map[string]any{"sub": "alice", "iat": 1700000000})
	x.SetMetadata("istio.mixer", "label", "blue")
	return x
}

var end = start.Add(226*time.Millisecond + 700*time.Microsecond)

func TestDefaultFormat(t *testing.T) {
	f, err := Compile(DefaultFormat)
	if err != nil {
		t.Fatal(err)
	}
	x := exchange()
	x.Request.Path = "/api/v1/locations"
	got := string(f.Append(nil, x, end))
	want := `[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "10.0.2.1:80"` + "\n"
	if got != want {
		t.Errorf("default format:\n got %q\nwant %q", got, want)
	}

	// A request that never reached an upstream: Envoy's dashes.
	x = &filters.Exchange{Request: filters.Request{Method: "GET", Path: "/nope", Protocol: "HTTP/1.1", Authority: "a"}}
	x.Info.Start = start
	x.SendLocalReply(filters.LocalReply{Status: 404, Details: "route_not_found", Flag: "NR"})
	got = string(f.Append(nil, x, start.Add(time.Millisecond)))
	want = `[2016-04-15T20:17:00.310Z] "GET /nope HTTP/1.1" 404 NR 0 0 1 - "-" "-" "-" "a" "-"` + "\n"
	if got != want {
		t.Errorf("local reply:\n got %q\nwant %q", got, want)
	}
}

func TestIstioFormat(t *testing.T) {
	f, err := Compile(IstioFormat)
	if err != nil {
		t.Fatal(err)
	}
	got := string(f.Append(nil, exchange(), end))
	want := `[2016-04-15T20:17:00.310Z] "POST /api/v1/locations?from=1 HTTP/2" 204 - via_upstream - "-" 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "10.0.2.1:80" outbound|80||locations.default.svc.cluster.local - 10.0.0.9:8443 10.0.35.28:51234 locations.example.com locations-route` + "\n"
	if got != want {
		t.Errorf("istio format:\n got %q\nwant %q", got, want)
	}
}

func TestOperators(t *testing.T) {
	t.Setenv("WAYGATE_ZONE", "eu-1")
	tests := []struct {
		name, format, want string
	}{
		{"alternate header", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/api/v1/locations?from=1"},
		{"alternate used when set", "%REQ(USER-AGENT?X-REQUEST-ID)%", "nsq2http"},
		{"max length", "%REQ(X-REQUEST-ID):8%", "cc21d9b0"},
		{"max length longer than value", "%REQ(USER-AGENT):100%", "nsq2http"},
		{"lower case header", "%REQ(user-agent)%", "nsq2http"},
		{"host is authority", "%REQ(HOST)%", "locations"},
		{"scheme", "%REQ(:SCHEME)%", "https"},
		{"missing header", "%REQ(X-MISSING)%", "-"},
		{"without query", "%REQ_WITHOUT_QUERY(:PATH)%", "/api/v1/locations"},
		{"new header names", "%REQUEST_HEADER(:METHOD)% %RESPONSE_HEADER(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "POST 100"},
		{"response status pseudo", "%RESP(:STATUS)%", "204"},
		{"trailer", "%TRAILER(GRPC-STATUS)% %RESPONSE_TRAILER(GRPC-MESSAGE)%", "0 -"},
		{"percent escape", "100%% %RESPONSE_CODE%", "100% 204"},
		{"start time strftime", "%START_TIME(%Y/%m/%dT%H:%M:%S%z %s)%", "2016/04/15T20:17:00+0000 1460751420"},
		{"start time fractions", "%START_TIME(%s.%3f)% %START_TIME(%s.%6f)% %START_TIME(%f)%", "1460751420.310 1460751420.310123 310123456"},
		{"start time absl seconds", "%START_TIME(%Y-%m-%dT%H:%M:%E3SZ)%", "2016-04-15T20:17:00.310Z"},
		{"start time names", "%START_TIME(%a %A %b %B %e %j %I%p %F %T %D %Z)%", "Fri Friday Apr April 15 106 08PM 2016-04-15 20:17:00 04/15/16 UTC"},
		{"durations", "%DURATION% %REQUEST_DURATION% %RESPONSE_DURATION%", "226 - -"},
		{"addresses", "%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT%",
			"10.0.35.28:51234 10.0.35.28 10.0.0.9:8443 10.0.0.9 8443"},
		{"direct peer", "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%", "10.0.0.5:40000 10.0.0.5"},
		{"upstream", "%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %UPSTREAM_TRANSPORT_FAILURE_REASON%",
			"10.0.2.1:80 outbound|80||locations.default.svc.cluster.local - 1 -"},
		{"tls", "%REQUESTED_SERVER_NAME% %DOWNSTREAM_TLS_VERSION% %DOWNSTREAM_PEER_URI_SAN%", "locations.example.com TLSv1.3 spiffe://cluster.local/ns/default/sa/client"},
		{"route and details", "%ROUTE_NAME% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%", "locations-route via_upstream -"},
		{"metadata string", "%DYNAMIC_METADATA(istio.mixer:label)%", "blue"},
		{"metadata nested", "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload:sub)%", "alice"},
		{"metadata object", "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload)%", `{"iat":1700000000,"sub":"alice"}`},
		{"metadata truncated", "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload):6%", `{"iat"`},
		{"metadata missing", "%DYNAMIC_METADATA(nope:x)% %DYNAMIC_METADATA(istio.mixer:nope)%", "- -"},
		{"environment", "%ENVIRONMENT(WAYGATE_ZONE)% %ENVIRONMENT(WAYGATE_UNSET_VARIABLE)%", "eu-1 -"},
		{"flags joined", "%RESPONSE_FLAGS%", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.Append(nil, exchange(), end)); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.format, got, tt.want)
			}
		})
	}

	x := exchange()
	x.Info.AddResponseFlag("UO")
	x.Info.AddResponseFlag("URX")
	f, _ := Compile("%RESPONSE_FLAGS% %HOSTNAME%")
	if got := string(f.Append(nil, x, end)); !strings.HasPrefix(got, "UO,URX ") || strings.HasSuffix(got, " ") {
		t.Errorf("flags and hostname = %q", got)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		format, want string
	}{
		{"%NOPE%", "unknown command operator %NOPE%"},
		{"a %REQ(X-A)", "position 2: command operator %REQ is not closed with %"},
		{"%REQ(X-A%", "has no closing )"},
		{"%REQ%", "want a header name"},
		{"%REQ(A?B?C)%", "want a header name"},
		{"%DURATION(x)%", "takes no argument"},
		{"%REQ(A):0%", "positive number"},
		{"%REQ(A):x%", "positive number"},
		{"100%", "starts no command operator"},
		{"%START_TIME(%Q)%", "unsupported time specifier %Q"},
		{"%DYNAMIC_METADATA()%", "NAMESPACE"},
		{"%ENVIRONMENT%", "VARIABLE"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.format)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%q) error = %v, want one containing %q", tt.format, err, tt.want)
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{DefaultFormat, IstioFormat, "%REQ(A?B):3%", "%START_TIME(%s.%3f%E3S%%)%", "%%", "%DYNAMIC_METADATA(a:b:c):2%", "%METADATA(ROUTE:istio:config)%", "%CLUSTER_METADATA(istio)%", "%UPSTREAM_METADATA(a:b)%", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, format string) {
		fm, err := Compile(format)
		if err != nil {
			return
		}
		fm.Append(nil, exchange(), end)
		fm.Append(nil, &filters.Exchange{}, time.Time{})
	})
}

func BenchmarkDefaultFormat(b *testing.B) {
	f, err := Compile(DefaultFormat)
	if err != nil {
		b.Fatal(err)
	}
	x := exchange()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], x, end)
	}
}

func BenchmarkIstioFormat(b *testing.B) {
	f, err := Compile(IstioFormat)
	if err != nil {
		b.Fatal(err)
	}
	x := exchange()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], x, end)
	}
}
