package backend

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestBookinfo(t *testing.T) {
	set := []Backend{
		{Service: "productpage", Version: "v1"},
		{Service: "details", Version: "v1"},
		{Service: "ratings", Version: "v1"},
		{Service: "reviews", Version: "v1"},
		{Service: "reviews", Version: "v2"},
		{Service: "reviews", Version: "v3"},
	}
	for i := range set {
		set[i].Addr = "127.0.0.1:0"
	}
	stop, addrs, err := StartBackends(set)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	addr := map[string]string{}
	for i, b := range set {
		addr[b.Service+" "+b.Version] = "http://" + addrs[i]
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	tests := []struct {
		name       string
		backend    string
		path       string
		header     map[string]string
		wantStatus int
		wantType   string
		wantBody   []string // substrings
	}{
		{"productpage", "productpage v1", "/productpage", nil, 200, "text/html", []string{"The Comedy of Errors", "served by productpage v1", "Sign in"}},
		{"productpage signed in by header", "productpage v1", "/productpage", map[string]string{"end-user": "jason"}, 200, "text/html", []string{`signed in as <b id="user">jason</b>`}},
		{"productpage signed in by cookie", "productpage v1", "/productpage", map[string]string{"cookie": "user=jason"}, 200, "text/html", []string{"jason"}},
		{"productpage escapes the user", "productpage v1", "/productpage", map[string]string{"end-user": "<script>"}, 200, "text/html", []string{"&lt;script&gt;"}},
		{"static", "productpage v1", "/static/bootstrap/css/bootstrap.min.css", nil, 200, "text/css", []string{"productpage v1"}},
		{"logout", "productpage v1", "/logout", nil, 302, "", nil},
		{"products", "productpage v1", "/api/v1/products", nil, 200, "application/json", []string{`"title": "The Comedy of Errors"`}},
		{"product", "productpage v1", "/api/v1/products/0", nil, 200, "application/json", []string{`"id": 0`}},
		{"no such product", "productpage v1", "/api/v1/products/7", nil, 404, "application/json", nil},
		{"productpage echoes other paths", "productpage v1", "/reviews/0", nil, 200, "application/json", []string{`"service": "productpage"`}},
		{"details", "details v1", "/details/0", nil, 200, "application/json", []string{`"author": "William Shakespeare"`}},
		{"ratings", "ratings v1", "/ratings/0", nil, 200, "application/json", []string{`"Reviewer1": 5`}},
		{"ratings wants a number", "ratings v1", "/ratings/abc", nil, 400, "application/json", []string{"numeric product ID"}},
		{"ratings asked for 200", "ratings v1", "/ratings/0?status=200", nil, 200, "application/json", []string{`"Reviewer2": 4`}},
		{"ratings status control", "ratings v1", "/ratings/0", map[string]string{"x-echo-status": "500"}, 500, "application/json", []string{`"service": "ratings"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, addr[tt.backend]+tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			if _, err := body.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body.String())
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantType) {
				t.Errorf("content-type %q, want %q", resp.Header.Get("Content-Type"), tt.wantType)
			}
			for _, w := range tt.wantBody {
				if !strings.Contains(body.String(), w) {
					t.Errorf("body lacks %q:\n%s", w, body.String())
				}
			}
		})
	}

	t.Run("reviews versions", func(t *testing.T) {
		for version, stars := range map[string]string{"v1": "", "v2": "black", "v3": "red"} {
			resp, body := get(t, http.DefaultClient, addr["reviews "+version]+"/reviews/0", nil)
			var rv Reviews
			if err := json.Unmarshal(body, &rv); err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("x-version") != version || rv.Version != version || rv.Stars != stars || len(rv.Reviews) != 2 {
				t.Fatalf("reviews %s answered %+v", version, rv)
			}
			for _, r := range rv.Reviews {
				if (r.Rating == nil) != (stars == "") || (r.Rating != nil && r.Rating.Color != stars) {
					t.Errorf("reviews %s: review %+v, want star color %q", version, r, stars)
				}
			}
		}
	})

	t.Run("login", func(t *testing.T) {
		resp, err := noRedirect.PostForm(addr["productpage v1"]+"/login", url.Values{"username": {"jason"}, "passwd": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/productpage" {
			t.Fatalf("login answered %d to %q, want 302 to /productpage", resp.StatusCode, resp.Header.Get("Location"))
		}
		c := resp.Cookies()
		if len(c) != 1 || c[0].Name != sessionCookie || c[0].Value != "jason" {
			t.Errorf("login set cookies %v, want user=jason", c)
		}
	})
}

func TestBookinfoBackendsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, b := range BookinfoBackends() {
		if seen[b.Addr] || seen[b.Service+" "+b.Version] {
			t.Errorf("%+v repeats an address or a service version", b)
		}
		seen[b.Addr], seen[b.Service+" "+b.Version] = true, true
	}
}

func TestStartBackendsNamesTheFailure(t *testing.T) {
	s := start(t, Options{Service: "ratings", Version: "v1"})
	_, _, err := StartBackends([]Backend{
		{Service: "details", Version: "v1", Addr: "127.0.0.1:0"},
		{Service: "ratings", Version: "v1", Addr: s.Addr()},
	})
	if err == nil || !strings.Contains(err.Error(), "ratings v1: "+s.Addr()+" is taken") {
		t.Fatalf("err %v, want it to name ratings v1 and the taken address", err)
	}
}
