package wasm

import (
	"net/http"
	"slices"
	"testing"

	"github.com/waygate/waygate/filters"
)

func TestFieldMap(t *testing.T) {
	newReq := func() *filters.Exchange {
		x := exchange("X-Multi", "a", "X-Multi", "b", "Accept", "*/*")
		x.Request.Path = "/p?q=1"
		return x
	}
	reqMap := func(x *filters.Exchange) fieldMap {
		return fieldMap{h: &x.Request.Header, req: &x.Request, x: x}
	}
	tests := []struct {
		name  string
		apply func(f fieldMap) status
		check func(t *testing.T, x *filters.Exchange, f fieldMap)
	}{
		{"pseudo-headers read", nil, func(t *testing.T, x *filters.Exchange, f fieldMap) {
			for k, want := range map[string]string{":method": "GET", ":path": "/p?q=1", ":authority": "shop", "host": "shop", ":scheme": "http"} {
				if got, ok := f.first(k); !ok || got != want {
					t.Errorf("%s = %q %v, want %q", k, got, ok, want)
				}
			}
		}},
		{"first value, or all joined", nil, func(t *testing.T, x *filters.Exchange, f fieldMap) {
			if got, _ := f.first("x-multi"); got != "a" {
				t.Errorf("first = %q", got)
			}
			if got, _ := f.get("x-multi"); got != "a,b" {
				t.Errorf("get = %q", got)
			}
			if _, ok := f.first("x-none"); ok {
				t.Error("absent header found")
			}
		}},
		{"replace path reroutes", func(f fieldMap) status { return f.set(":path", "/new", true) }, func(t *testing.T, x *filters.Exchange, f fieldMap) {
			if x.Request.Path != "/new" {
				t.Errorf("path = %q", x.Request.Path)
			}
		}},
		{"replace drops other values", func(f fieldMap) status { return f.set("x-multi", "c", true) }, func(t *testing.T, x *filters.Exchange, f fieldMap) {
			if got := x.Request.Header.Values("X-Multi"); !slices.Equal(got, []string{"c"}) {
				t.Errorf("values = %q", got)
			}
		}},
		{"add appends", func(f fieldMap) status { return f.set("x-multi", "c", false) }, func(t *testing.T, x *filters.Exchange, f fieldMap) {
			if got := x.Request.Header.Values("X-Multi"); !slices.Equal(got, []string{"a", "b", "c"}) {
				t.Errorf("values = %q", got)
			}
		}},
		{"remove", func(f fieldMap) status { return f.remove("accept") }, func(t *testing.T, x *filters.Exchange, f fieldMap) {
			if _, ok := x.Request.Header["Accept"]; ok {
				t.Error("accept still there")
			}
		}},
		{"replace all", func(f fieldMap) status {
			return f.replaceAll(encodeMap(nil, pairsOf([][2]string{{":method", "POST"}, {":path", "/x"}, {"X-New", "1"}, {"x-new", "2"}})))
		}, func(t *testing.T, x *filters.Exchange, f fieldMap) {
			if x.Request.Method != "POST" || x.Request.Path != "/x" || len(x.Request.Header) != 1 || !slices.Equal(x.Request.Header.Values("X-New"), []string{"1", "2"}) {
				t.Errorf("request = %s %s %v", x.Request.Method, x.Request.Path, x.Request.Header)
			}
		}},
		{"replace all refuses a malformed map", func(f fieldMap) status {
			if st := f.replaceAll([]byte{9, 0, 0, 0}); st != statusBadArgument {
				return st
			}
			return statusOK
		}, func(t *testing.T, x *filters.Exchange, f fieldMap) {
			if len(x.Request.Header) != 2 {
				t.Errorf("headers changed: %v", x.Request.Header)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newReq()
			f := reqMap(x)
			if tt.apply != nil {
				if st := tt.apply(f); st != statusOK {
					t.Fatalf("status %d", st)
				}
			}
			tt.check(t, x, f)
		})
	}
	t.Run("response status", func(t *testing.T) {
		r := &filters.Response{Status: 200, Header: http.Header{}}
		f := fieldMap{h: &r.Header, resp: r}
		if got, _ := f.first(":status"); got != "200" {
			t.Errorf(":status = %q", got)
		}
		if f.set(":status", "418", true) != statusOK || r.Status != 418 {
			t.Errorf("status = %d", r.Status)
		}
		if f.set(":status", "abc", true) != statusBadArgument {
			t.Error("a non-numeric :status was accepted")
		}
	})
	t.Run("http call answers are read-only", func(t *testing.T) {
		h := http.Header{"A": {"1"}}
		f := fieldMap{h: &h, status: 200, readOnly: true}
		if f.set("b", "2", false) != statusBadArgument || f.remove("a") != statusBadArgument {
			t.Error("changed a read-only map")
		}
	})
}
