package cors

import (
	"net/http"
	"testing"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

// testRoute is the view of a matched route the filter reads.
type testRoute struct{ per map[string]any }

func (r *testRoute) Name() string                    { return "r1" }
func (r *testRoute) VirtualHost() string             { return "vh1" }
func (r *testRoute) Cluster() string                 { return "outbound|9080||productpage" }
func (r *testRoute) PerFilterConfig(name string) any { return r.per[name] }

func exact(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

func regex(re string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}}
}

func enabled(n uint32) *corev3.RuntimeFractionalPercent {
	return &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: n}, RuntimeKey: "cors.www.enabled"}
}

// istio is what istiod emits for a VirtualService corsPolicy.
func istio() *corsv3.CorsPolicy {
	return &corsv3.CorsPolicy{
		AllowOriginStringMatch: []*matcherv3.StringMatcher{exact("https://app.example.com"), regex(`https://[a-z]+\.example\.org`)},
		AllowMethods:           "GET,POST",
		AllowHeaders:           "content-type,x-custom",
		ExposeHeaders:          "x-request-id",
		MaxAge:                 "86400",
		FilterEnabled:          enabled(100),
	}
}

func with(f func(*corsv3.CorsPolicy)) *corsv3.CorsPolicy {
	p := istio()
	f(p)
	return p
}

func routeWith(t *testing.T, pb *corsv3.CorsPolicy) filters.Route {
	t.Helper()
	compile, ok := filters.LookupRouteConfig(PolicyTypeURL)
	if !ok {
		t.Fatal("CorsPolicy not registered")
	}
	p, err := compile(pb)
	if err != nil {
		t.Fatal(err)
	}
	return &testRoute{per: map[string]any{FilterName: p}}
}

func preflight(origin string, extra ...string) (string, []string) {
	return "OPTIONS", append([]string{"Origin", origin, "Access-Control-Request-Method", "POST"}, extra...)
}

func actual(method, origin string) (string, []string) {
	return method, []string{"Origin", origin}
}

type result struct {
	created bool
	status  filters.Status
	reply   *filters.LocalReply
	resp    http.Header // response headers after the response phase
}

// run drives the request phase and, when the exchange goes on, the
// response phase on an upstream 200, as the chain does.
func run(t *testing.T, f *Factory, rt filters.Route, method string, hdr []string) result {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	x := &filters.Exchange{Request: filters.Request{Method: method, Scheme: "https", Authority: "api.example.com", Path: "/", Header: h}}
	if rt != nil {
		x.Route = rt
	}
	fl := f.NewFilter(x)
	if fl == nil {
		return result{}
	}
	r := result{created: true}
	r.status = fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true)
	if r.reply = x.LocalReply(); r.reply != nil {
		x.Response = filters.Response{Status: r.reply.Status, Header: r.reply.Header.Clone()}
	} else {
		x.Response = filters.Response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}}
	}
	if st := fl.(filters.ResponseHeadersFilter).OnResponseHeaders(x, true); st != filters.Continue {
		t.Fatalf("response headers: %v", st)
	}
	r.resp = x.Response.Header
	return r
}

func TestCORS(t *testing.T) {
	type hdrs map[string]string
	tests := []struct {
		name    string
		policy  *corsv3.CorsPolicy // nil: route without a policy
		method  string
		hdr     []string
		noRoute bool
		// preflight is true when the filter must answer locally.
		preflight bool
		created   bool
		want      hdrs // response headers that must be present
		absent    []string
	}{
		{name: "preflight exact origin", policy: istio(), created: true, preflight: true,
			want:   hdrs{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Methods": "GET,POST", "Access-Control-Allow-Headers": "content-type,x-custom", "Access-Control-Max-Age": "86400"},
			absent: []string{"Access-Control-Expose-Headers", "Access-Control-Allow-Credentials", "Vary"}},
		{name: "preflight regex origin", policy: istio(), created: true, preflight: true,
			want: hdrs{"Access-Control-Allow-Origin": "https://shop.example.org"}},
		{name: "preflight regex is a full match", policy: istio(), created: true,
			absent: []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods"}},
		{name: "preflight disallowed origin passes through", policy: istio(), created: true,
			absent: []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Max-Age"}},
		{name: "preflight disallowed origin answered when not forwarded", created: true, preflight: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.ForwardNotMatchingPreflights = wrapperspb.Bool(false) }),
			want:   hdrs{"Access-Control-Allow-Methods": "GET,POST"}, absent: []string{"Access-Control-Allow-Origin"}},
		{name: "preflight with credentials", created: true, preflight: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.AllowCredentials = wrapperspb.Bool(true) }),
			want:   hdrs{"Access-Control-Allow-Credentials": "true", "Access-Control-Allow-Origin": "https://app.example.com"}},
		{name: "preflight wildcard methods and headers echo the request", created: true, preflight: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.AllowMethods, p.AllowHeaders = "*", "*" }),
			want:   hdrs{"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "x-trace"}},
		{name: "preflight private network access", created: true, preflight: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.AllowPrivateNetworkAccess = wrapperspb.Bool(true) }),
			want:   hdrs{"Access-Control-Allow-Private-Network": "true"}},
		{name: "preflight private network access not allowed", created: true, preflight: true, policy: istio(),
			absent: []string{"Access-Control-Allow-Private-Network"}},
		{name: "star origin allows any", created: true, preflight: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.AllowOriginStringMatch = []*matcherv3.StringMatcher{exact("*")} }),
			want:   hdrs{"Access-Control-Allow-Origin": "https://anything.test"}},
		{name: "prefix origin ignoring case", created: true, preflight: true,
			policy: with(func(p *corsv3.CorsPolicy) {
				p.AllowOriginStringMatch = []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "HTTPS://APP."}, IgnoreCase: true}}
			}),
			want: hdrs{"Access-Control-Allow-Origin": "https://app.example.com"}},

		{name: "actual request gets headers", policy: istio(), method: "GET", created: true,
			want:   hdrs{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Expose-Headers": "x-request-id"},
			absent: []string{"Access-Control-Allow-Credentials", "Access-Control-Allow-Methods", "Access-Control-Max-Age"}},
		{name: "actual request with credentials", method: "POST", created: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.AllowCredentials = wrapperspb.Bool(true) }),
			want:   hdrs{"Access-Control-Allow-Credentials": "true"}},
		{name: "actual request without expose headers", method: "GET", created: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.ExposeHeaders = "" }),
			want:   hdrs{"Access-Control-Allow-Origin": "https://app.example.com"}, absent: []string{"Access-Control-Expose-Headers"}},
		{name: "actual request from disallowed origin", policy: istio(), method: "GET", created: true,
			absent: []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers"}},
		{name: "options without request method is an actual request", policy: istio(), method: "OPTIONS", created: true,
			want: hdrs{"Access-Control-Allow-Origin": "https://app.example.com"}},

		{name: "disabled policy does nothing", method: "GET", created: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.FilterEnabled = enabled(0) }),
			absent: []string{"Access-Control-Allow-Origin"}},
		{name: "disabled policy lets preflight through", created: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.FilterEnabled = enabled(0) }),
			absent: []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods"}},
		{name: "shadow policy does nothing", created: true,
			policy: with(func(p *corsv3.CorsPolicy) { p.FilterEnabled, p.ShadowEnabled = enabled(0), enabled(100) }),
			absent: []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods"}},
		{name: "route without policy", method: "GET"},
		{name: "no route", policy: istio(), method: "GET", noRoute: true},
		{name: "no origin", policy: istio(), method: "GET"},
	}
	origins := map[string]string{
		"preflight regex origin":                                  "https://shop.example.org",
		"preflight regex is a full match":                         "https://shop.example.org.evil.test",
		"preflight disallowed origin passes through":              "https://evil.test",
		"preflight disallowed origin answered when not forwarded": "https://evil.test",
		"star origin allows any":                                  "https://anything.test",
		"actual request from disallowed origin":                   "https://evil.test",
		"no origin":                                               "",
	}
	f := New(filters.Env{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin, ok := origins[tt.name]
			if !ok {
				origin = "https://app.example.com"
			}
			method, hdr := preflight(origin, "Access-Control-Request-Headers", "x-trace", "Access-Control-Request-Private-Network", "true")
			if tt.method != "" {
				method, hdr = actual(tt.method, origin)
			}
			if origin == "" {
				hdr = nil
			}
			var rt filters.Route
			if tt.policy != nil && !tt.noRoute {
				rt = routeWith(t, tt.policy)
			} else if !tt.noRoute {
				rt = &testRoute{}
			}
			r := run(t, f, rt, method, hdr)
			if r.created != tt.created {
				t.Fatalf("filter created = %v, want %v", r.created, tt.created)
			}
			if !r.created {
				return
			}
			if tt.preflight {
				if r.status != filters.Stop || r.reply == nil || r.reply.Status != 200 || r.reply.Details != "cors_response" || r.reply.Body != "" {
					t.Fatalf("preflight: status %v reply %+v, want Stop and an empty 200 cors_response", r.status, r.reply)
				}
			} else if r.status != filters.Continue || r.reply != nil {
				t.Fatalf("status %v reply %+v, want Continue without reply", r.status, r.reply)
			}
			for k, v := range tt.want {
				if got := r.resp.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tt.absent {
				if vs, ok := r.resp[http.CanonicalHeaderKey(k)]; ok {
					t.Errorf("%s = %q, want absent", k, vs)
				}
			}
		})
	}
}

func TestStats(t *testing.T) {
	store := stats.NewStore()
	f := New(filters.Env{Stats: store.Scope("http.ingress.").Filters()})
	shadow := with(func(p *corsv3.CorsPolicy) { p.FilterEnabled, p.ShadowEnabled = enabled(0), enabled(100) })
	off := with(func(p *corsv3.CorsPolicy) { p.FilterEnabled = enabled(0) })
	for _, c := range []struct {
		policy *corsv3.CorsPolicy
		origin string
	}{
		{istio(), "https://app.example.com"},
		{istio(), "https://evil.test"},
		{shadow, "https://app.example.com"}, // shadow mode counts
		{shadow, "https://evil.test"},
		{off, "https://evil.test"}, // a disabled policy does not
		{istio(), ""},              // nor does a request without Origin
	} {
		hdr := []string{"Origin", c.origin}
		if c.origin == "" {
			hdr = nil
		}
		run(t, f, routeWith(t, c.policy), "GET", hdr)
	}
	for name, want := range map[string]uint64{"http.ingress.cors.origin_valid": 2, "http.ingress.cors.origin_invalid": 2} {
		if got := store.Counter(name).Value(); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

func TestRegistered(t *testing.T) {
	b, ok := filters.Lookup(TypeURL)
	if !ok {
		t.Fatal("Cors not registered")
	}
	f, err := b(&corsv3.Cors{}, filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, f.(*Factory), routeWith(t, istio()), "GET", []string{"Origin", "https://app.example.com"})
	if r.resp.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("registered factory did not add CORS headers: %v", r.resp)
	}
	if _, err := b(&corsv3.CorsPolicy{}, filters.Env{}); err == nil {
		t.Error("a config of another type must fail")
	}
}

func TestFromRoute(t *testing.T) {
	p, err := FromRoute(&routev3.CorsPolicy{
		AllowOriginStringMatch: []*matcherv3.StringMatcher{exact("https://app.example.com")},
		AllowMethods:           "GET",
		AllowCredentials:       wrapperspb.Bool(true),
		EnabledSpecifier:       &routev3.CorsPolicy_FilterEnabled{FilterEnabled: enabled(100)},
	})
	if err != nil {
		t.Fatal(err)
	}
	rt := &testRoute{per: map[string]any{FilterName: p}}
	method, hdr := preflight("https://app.example.com")
	r := run(t, New(filters.Env{}), rt, method, hdr)
	if r.reply == nil || r.resp.Get("Access-Control-Allow-Methods") != "GET" || r.resp.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("route-level policy: reply %+v headers %v", r.reply, r.resp)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		pb   *corsv3.CorsPolicy
		want string
	}{
		{"bad regex", &corsv3.CorsPolicy{AllowOriginStringMatch: []*matcherv3.StringMatcher{exact("a"), regex("(")}}, `allow_origin_string_match[1].safe_regex: regex "("`},
		{"custom matcher", &corsv3.CorsPolicy{AllowOriginStringMatch: []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Custom{Custom: &xdscorev3.TypedExtensionConfig{Name: "lua"}}}}}, `allow_origin_string_match[0].custom: extension "lua" is not supported`},
		{"no pattern", &corsv3.CorsPolicy{AllowOriginStringMatch: []*matcherv3.StringMatcher{{}}}, "allow_origin_string_match[0].match_pattern: one of"},
		{"bad denominator", &corsv3.CorsPolicy{FilterEnabled: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 1, Denominator: 9}}}, "filter_enabled.default_value.denominator: 9 is not one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.pb)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if got := err.Error(); len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Errorf("error = %q, want prefix %q", got, tt.want)
			}
		})
	}
}
