package backend

import (
	"net/http"
	"net/url"
	"testing"
)

func TestParseControls(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		header  map[string][]string
		want    controls
		wantErr bool
	}{
		{name: "none", want: controls{bodySize: -1}},
		{name: "all from query", query: "status=503&delay=1.5s&reset=1&body-size=10&header=a=b&header=c=",
			want: controls{status: 503, delay: 1500e6, reset: true, bodySize: 10, headers: [][2]string{{"a", "b"}, {"c", ""}}}},
		{name: "headers replace query headers", query: "header=q=1", header: map[string][]string{"X-Echo-Header": {"h=2"}},
			want: controls{bodySize: -1, headers: [][2]string{{"h", "2"}}}},
		{name: "value keeps its equals signs", header: map[string][]string{"X-Echo-Header": {"set-cookie=a=b"}},
			want: controls{bodySize: -1, headers: [][2]string{{"set-cookie", "a=b"}}}},
		{name: "reset false", query: "reset=false", want: controls{bodySize: -1}},
		{name: "status too low", query: "status=100", wantErr: true},
		{name: "status not a number", query: "status=ok", wantErr: true},
		{name: "negative delay", query: "delay=-1s", wantErr: true},
		{name: "delay without unit", query: "delay=2", wantErr: true},
		{name: "reset not a bool", query: "reset=maybe", wantErr: true},
		{name: "negative body size", query: "body-size=-1", wantErr: true},
		{name: "header name with space", query: "header=a b=c", wantErr: true},
		{name: "header value with newline", header: map[string][]string{"X-Echo-Header": {"a=b\nc"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{URL: &url.URL{Path: "/", RawQuery: tt.query}, Header: tt.header}
			got, err := parseControls(r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if got.status != tt.want.status || got.delay != tt.want.delay || got.reset != tt.want.reset ||
				got.bodySize != tt.want.bodySize || len(got.headers) != len(tt.want.headers) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got.headers {
				if got.headers[i] != tt.want.headers[i] {
					t.Errorf("header %d = %v, want %v", i, got.headers[i], tt.want.headers[i])
				}
			}
		})
	}
}

// FuzzParseControls checks that whatever a client sends, the controls
// parsed stay within the bounds the handler relies on.
func FuzzParseControls(f *testing.F) {
	f.Add("status=503&delay=2s", "x=y", "true", "65536")
	f.Add("header=a=b", "=", "", "-5")
	f.Fuzz(func(t *testing.T, query, header, reset, size string) {
		r := &http.Request{URL: &url.URL{Path: "/", RawQuery: query}, Header: http.Header{}}
		r.Header["X-Echo-Header"] = []string{header}
		r.Header["X-Echo-Reset"] = []string{reset}
		r.Header["X-Echo-Body-Size"] = []string{size}
		c, err := parseControls(r)
		if err != nil {
			return
		}
		if c.status != 0 && (c.status < 200 || c.status > 599) || c.delay < 0 || c.bodySize < -1 || c.bodySize > maxBodySize {
			t.Fatalf("out of bounds: %+v", c)
		}
	})
}
