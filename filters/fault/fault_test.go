package fault

import (
	"context"
	"net/http"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

// testRoute is the view of a matched route the filter reads.
type testRoute struct {
	cluster string
	per     map[string]any
}

func (r *testRoute) Name() string                    { return "r1" }
func (r *testRoute) VirtualHost() string             { return "vh1" }
func (r *testRoute) Cluster() string                 { return r.cluster }
func (r *testRoute) PerFilterConfig(name string) any { return r.per[name] }

func newExchange(ctx context.Context, rt filters.Route, hdr ...string) *filters.Exchange {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	x := &filters.Exchange{
		Context: ctx,
		Request: filters.Request{Method: "GET", Scheme: "http", Authority: "bookinfo", Path: "/ratings", Header: h},
	}
	if rt != nil {
		x.Route = rt
	}
	return x
}

func pct(n uint32, d typev3.FractionalPercent_DenominatorType) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: n, Denominator: d}
}

func all() *typev3.FractionalPercent { return pct(100, typev3.FractionalPercent_HUNDRED) }

func fixedDelay(d time.Duration, p *typev3.FractionalPercent) *commonfaultv3.FaultDelay {
	return &commonfaultv3.FaultDelay{
		FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(d)},
		Percentage:         p,
	}
}

func headerDelay(p *typev3.FractionalPercent) *commonfaultv3.FaultDelay {
	return &commonfaultv3.FaultDelay{
		FaultDelaySecifier: &commonfaultv3.FaultDelay_HeaderDelay_{HeaderDelay: &commonfaultv3.FaultDelay_HeaderDelay{}},
		Percentage:         p,
	}
}

func httpAbort(status uint32, p *typev3.FractionalPercent) *faultv3.FaultAbort {
	return &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: status}, Percentage: p}
}

func grpcAbort(status uint32, p *typev3.FractionalPercent) *faultv3.FaultAbort {
	return &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_GrpcStatus{GrpcStatus: status}, Percentage: p}
}

func headerAbortCfg(p *typev3.FractionalPercent) *faultv3.FaultAbort {
	return &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HeaderAbort_{HeaderAbort: &faultv3.FaultAbort_HeaderAbort{}}, Percentage: p}
}

func mustNew(t *testing.T, pb *faultv3.HTTPFault, st filters.Stats) *Factory {
	t.Helper()
	f, err := New(pb, filters.Env{Stats: st})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

// run drives one stream through the filter's request phase, as the chain
// does, and reports what it answered and how long it took.
func run(f *Factory, x *filters.Exchange) (filters.Status, time.Duration, bool) {
	fl := f.NewFilter(x)
	if fl == nil {
		return filters.Continue, 0, false
	}
	start := time.Now()
	st := fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true)
	took := time.Since(start)
	if d, ok := fl.(filters.DoneFilter); ok {
		d.OnDone(x)
	}
	return st, took, true
}

func TestFaultKinds(t *testing.T) {
	const delay = 30 * time.Millisecond
	tests := []struct {
		name   string
		cfg    *faultv3.HTTPFault
		route  *testRoute
		hdr    []string
		grpc   bool
		status filters.Status
		// reply is the expected local reply status, 0 for none.
		reply      int
		grpcStatus string
		body       string
		delayed    bool
		flags      []string
		noFilter   bool
	}{
		{name: "empty config takes no part", cfg: &faultv3.HTTPFault{}, noFilter: true},
		{name: "fixed delay always", cfg: &faultv3.HTTPFault{Delay: fixedDelay(delay, all())}, delayed: true, flags: []string{"DI"}},
		{name: "fixed delay never", cfg: &faultv3.HTTPFault{Delay: fixedDelay(delay, pct(0, typev3.FractionalPercent_HUNDRED))}},
		{name: "delay without percentage never fires", cfg: &faultv3.HTTPFault{Delay: fixedDelay(delay, nil)}},
		{name: "delay ten thousand", cfg: &faultv3.HTTPFault{Delay: fixedDelay(delay, pct(10000, typev3.FractionalPercent_TEN_THOUSAND))}, delayed: true, flags: []string{"DI"}},
		{name: "delay million", cfg: &faultv3.HTTPFault{Delay: fixedDelay(delay, pct(1000000, typev3.FractionalPercent_MILLION))}, delayed: true, flags: []string{"DI"}},
		{name: "http abort", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, all())}, status: filters.Stop, reply: 503, body: "fault filter abort", flags: []string{"FI"}},
		{name: "http abort never", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, pct(0, typev3.FractionalPercent_MILLION))}},
		{name: "abort response body", cfg: &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: 429}, Percentage: all(), ResponseBody: "slow down"}}, status: filters.Stop, reply: 429, body: "slow down", flags: []string{"FI"}},
		{name: "grpc abort on grpc request", cfg: &faultv3.HTTPFault{Abort: grpcAbort(14, all())}, grpc: true, status: filters.Stop, reply: 200, grpcStatus: "14", flags: []string{"FI"}},
		{name: "grpc abort on plain request", cfg: &faultv3.HTTPFault{Abort: grpcAbort(14, all())}, status: filters.Stop, reply: 200, body: "fault filter abort", flags: []string{"FI"}},
		{name: "http abort on grpc request maps status", cfg: &faultv3.HTTPFault{Abort: httpAbort(403, all())}, grpc: true, status: filters.Stop, reply: 200, grpcStatus: "7", flags: []string{"FI"}},
		{name: "delay then abort", cfg: &faultv3.HTTPFault{Delay: fixedDelay(delay, all()), Abort: httpAbort(500, all())}, status: filters.Stop, reply: 500, body: "fault filter abort", delayed: true, flags: []string{"DI", "FI"}},

		{name: "header abort from header", cfg: &faultv3.HTTPFault{Abort: headerAbortCfg(all())}, hdr: []string{hdrAbort, "418"}, status: filters.Stop, reply: 418, body: "fault filter abort", flags: []string{"FI"}},
		{name: "header abort without header", cfg: &faultv3.HTTPFault{Abort: headerAbortCfg(all())}},
		{name: "header abort out of range", cfg: &faultv3.HTTPFault{Abort: headerAbortCfg(all())}, hdr: []string{hdrAbort, "700"}},
		{name: "header abort not a number", cfg: &faultv3.HTTPFault{Abort: headerAbortCfg(all())}, hdr: []string{hdrAbort, "teapot"}},
		{name: "header grpc abort wins", cfg: &faultv3.HTTPFault{Abort: headerAbortCfg(all())}, hdr: []string{hdrAbort, "503", hdrAbortGRPC, "8"}, grpc: true, status: filters.Stop, reply: 200, grpcStatus: "8", flags: []string{"FI"}},
		{name: "header abort percentage zero", cfg: &faultv3.HTTPFault{Abort: headerAbortCfg(all())}, hdr: []string{hdrAbort, "503", hdrAbortPercent, "0"}},
		{name: "header abort percentage capped by config", cfg: &faultv3.HTTPFault{Abort: headerAbortCfg(pct(0, typev3.FractionalPercent_HUNDRED))}, hdr: []string{hdrAbort, "503", hdrAbortPercent, "100"}},
		{name: "header delay from header", cfg: &faultv3.HTTPFault{Delay: headerDelay(all())}, hdr: []string{hdrDelay, "30"}, delayed: true, flags: []string{"DI"}},
		{name: "header delay without header", cfg: &faultv3.HTTPFault{Delay: headerDelay(all())}},
		{name: "header delay percentage zero", cfg: &faultv3.HTTPFault{Delay: headerDelay(all())}, hdr: []string{hdrDelay, "30", hdrDelayPercent, "0"}},

		{name: "abort header ignored when abort is fixed", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, pct(0, typev3.FractionalPercent_HUNDRED))}, hdr: []string{hdrAbort, "500", hdrAbortPercent, "100"}},
		{name: "delay header ignored when delay is fixed", cfg: &faultv3.HTTPFault{Delay: fixedDelay(delay, pct(0, typev3.FractionalPercent_HUNDRED))}, hdr: []string{hdrDelay, "30"}},
		{name: "fault headers ignored by an empty config", cfg: &faultv3.HTTPFault{}, hdr: []string{hdrAbort, "500", hdrDelay, "30"}, noFilter: true},
		{name: "abort header ignored by a delay-only config", cfg: &faultv3.HTTPFault{Delay: headerDelay(all())}, hdr: []string{hdrAbort, "500"}},

		{name: "upstream cluster matches", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, all()), UpstreamCluster: "outbound|9080||ratings"}, route: &testRoute{cluster: "outbound|9080||ratings"}, status: filters.Stop, reply: 503, body: "fault filter abort", flags: []string{"FI"}},
		{name: "upstream cluster differs", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, all()), UpstreamCluster: "outbound|9080||ratings"}, route: &testRoute{cluster: "outbound|9080||reviews"}},
		{name: "upstream cluster without route", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, all()), UpstreamCluster: "outbound|9080||ratings"}},
		{name: "downstream node listed", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, all()), DownstreamNodes: []string{"productpage"}}, hdr: []string{hdrDownstreamNode, "productpage"}, status: filters.Stop, reply: 503, body: "fault filter abort", flags: []string{"FI"}},
		{name: "downstream node not listed", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, all()), DownstreamNodes: []string{"productpage"}}, hdr: []string{hdrDownstreamNode, "reviews"}},
		{name: "downstream node missing", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, all()), DownstreamNodes: []string{"productpage"}}},
		{name: "headers match", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, all()), Headers: []*routev3.HeaderMatcher{{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "jason"}}}}, hdr: []string{"End-User", "jason"}, status: filters.Stop, reply: 503, body: "fault filter abort", flags: []string{"FI"}},
		{name: "headers do not match", cfg: &faultv3.HTTPFault{Abort: httpAbort(503, all()), Headers: []*routev3.HeaderMatcher{{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "jason"}}}}, hdr: []string{"End-User", "mike"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, tt.cfg, nil)
			hdr := tt.hdr
			if tt.grpc {
				hdr = append(hdr, "Content-Type", "application/grpc")
			}
			var rt filters.Route
			if tt.route != nil {
				rt = tt.route
			}
			x := newExchange(context.Background(), rt, hdr...)
			st, took, ok := run(f, x)
			if ok == tt.noFilter {
				t.Fatalf("filter created = %v, want %v", ok, !tt.noFilter)
			}
			if st != tt.status {
				t.Errorf("status = %v, want %v", st, tt.status)
			}
			if tt.delayed && took < delay {
				t.Errorf("took %v, want a delay of at least %v", took, delay)
			}
			if got := x.Info.ResponseFlags; !equal(got, tt.flags) {
				t.Errorf("flags = %v, want %v", got, tt.flags)
			}
			r := x.LocalReply()
			if tt.reply == 0 {
				if r != nil {
					t.Fatalf("unexpected local reply %+v", r)
				}
				return
			}
			if r == nil {
				t.Fatalf("no local reply, want %d", tt.reply)
			}
			if r.Status != tt.reply || r.Body != tt.body || r.Details != "fault_filter_abort" || r.Flag != "FI" {
				t.Errorf("reply = %d %q %q %q, want %d %q fault_filter_abort FI", r.Status, r.Body, r.Details, r.Flag, tt.reply, tt.body)
			}
			if got := r.Header.Get("Grpc-Status"); got != tt.grpcStatus {
				t.Errorf("grpc-status = %q, want %q", got, tt.grpcStatus)
			}
			if tt.grpcStatus != "" {
				if ct := r.Header.Get("Content-Type"); ct != "application/grpc" {
					t.Errorf("content-type = %q, want application/grpc", ct)
				}
				if m := r.Header.Get("Grpc-Message"); m != "fault filter abort" {
					t.Errorf("grpc-message = %q", m)
				}
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPercentageDraw checks that each request gets its own random draw:
// over 10,000 requests the share aborted stays within five standard
// deviations of the configured one, for each denominator.
func TestPercentageDraw(t *testing.T) {
	const n = 10_000
	tests := []struct {
		name string
		p    *typev3.FractionalPercent
		want float64
	}{
		{"hundred", pct(30, typev3.FractionalPercent_HUNDRED), 0.30},
		{"ten thousand", pct(525, typev3.FractionalPercent_TEN_THOUSAND), 0.0525},
		{"million", pct(750_000, typev3.FractionalPercent_MILLION), 0.75},
		{"header capped", pct(40, typev3.FractionalPercent_HUNDRED), 0.10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &faultv3.HTTPFault{Abort: httpAbort(503, tt.p)}
			var hdr []string
			if tt.name == "header capped" {
				cfg.Abort = headerAbortCfg(tt.p)
				hdr = []string{hdrAbort, "503", hdrAbortPercent, "10"}
			}
			f := mustNew(t, cfg, nil)
			aborted := 0
			for range n {
				x := newExchange(context.Background(), nil, hdr...)
				if st, _, _ := run(f, x); st == filters.Stop {
					aborted++
				}
			}
			mean := tt.want * n
			sd := sqrt(n * tt.want * (1 - tt.want))
			if d := float64(aborted) - mean; d > 5*sd || d < -5*sd {
				t.Errorf("aborted %d of %d, want %.0f ± %.0f", aborted, n, mean, 5*sd)
			}
		})
	}
}

func sqrt(v float64) float64 {
	x := v
	for range 50 {
		x = (x + v/x) / 2
	}
	return x
}

func TestDelayCanceledByContext(t *testing.T) {
	f := mustNew(t, &faultv3.HTTPFault{Delay: fixedDelay(time.Hour, all())}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	x := newExchange(ctx, nil)
	done := make(chan filters.Status, 1)
	go func() {
		st, _, _ := run(f, x)
		done <- st
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case st := <-done:
		if st != filters.Stop {
			t.Errorf("status = %v, want Stop", st)
		}
		if x.LocalReply() != nil {
			t.Errorf("a canceled delay must not answer, got %+v", x.LocalReply())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("delay did not end when the request context was canceled")
	}
	if n := f.ActiveFaults(); n != 0 {
		t.Errorf("active faults after the stream = %d, want 0", n)
	}
}

func TestRouteOverride(t *testing.T) {
	compileRoute, ok := filters.LookupRouteConfig(TypeURL)
	if !ok {
		t.Fatal("per-route config builder not registered")
	}
	perRoute := func(pb *faultv3.HTTPFault) *testRoute {
		c, err := compileRoute(pb)
		if err != nil {
			t.Fatal(err)
		}
		return &testRoute{per: map[string]any{FilterName: c}}
	}
	listener := &faultv3.HTTPFault{Abort: httpAbort(503, all())}
	tests := []struct {
		name  string
		lis   *faultv3.HTTPFault
		route *testRoute
		reply int
	}{
		{"listener config without route", listener, nil, 503},
		{"route without override keeps listener", listener, &testRoute{}, 503},
		{"route override beats listener", listener, perRoute(&faultv3.HTTPFault{Abort: httpAbort(418, all())}), 418},
		{"empty route override disables", listener, perRoute(&faultv3.HTTPFault{}), 0},
		{"route override on an empty listener config", &faultv3.HTTPFault{}, perRoute(&faultv3.HTTPFault{Abort: httpAbort(502, all())}), 502},
		{"other filter's config is ignored", listener, &testRoute{per: map[string]any{"envoy.filters.http.cors": struct{}{}}}, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, tt.lis, nil)
			var rt filters.Route
			if tt.route != nil {
				rt = tt.route
			}
			x := newExchange(context.Background(), rt)
			run(f, x)
			got := 0
			if r := x.LocalReply(); r != nil {
				got = r.Status
			}
			if got != tt.reply {
				t.Errorf("reply status = %d, want %d", got, tt.reply)
			}
		})
	}
}

func TestMaxActiveFaults(t *testing.T) {
	store := stats.NewStore()
	f := mustNew(t, &faultv3.HTTPFault{Abort: httpAbort(503, all()), MaxActiveFaults: wrapperspb.UInt32(1)}, store.Scope("http.ingress.").Filters())

	first := newExchange(context.Background(), nil)
	fl := f.NewFilter(first)
	if st := fl.(filters.RequestHeadersFilter).OnRequestHeaders(first, true); st != filters.Stop {
		t.Fatalf("first stream: %v, want Stop", st)
	}
	if n := f.ActiveFaults(); n != 1 {
		t.Fatalf("active = %d, want 1", n)
	}
	// The first stream is still going: the second overflows.
	second := newExchange(context.Background(), nil)
	if st, _, _ := run(f, second); st != filters.Continue || second.LocalReply() != nil {
		t.Fatalf("second stream: %v %+v, want Continue without reply", st, second.LocalReply())
	}
	if v := store.Counter("http.ingress.fault.faults_overflow").Value(); v != 1 {
		t.Errorf("faults_overflow = %d, want 1", v)
	}
	fl.(filters.DoneFilter).OnDone(first)
	third := newExchange(context.Background(), nil)
	if st, _, _ := run(f, third); st != filters.Stop {
		t.Errorf("third stream after the first ended: %v, want Stop", st)
	}
	if n := f.ActiveFaults(); n != 0 {
		t.Errorf("active = %d, want 0", n)
	}
}

func TestStats(t *testing.T) {
	store := stats.NewStore()
	st := store.Scope("http.ingress.").Filters()
	f := mustNew(t, &faultv3.HTTPFault{Delay: fixedDelay(time.Millisecond, all()), Abort: httpAbort(503, all())}, st)
	run(f, newExchange(context.Background(), nil, hdrDownstreamCluster, "productpage"))
	run(f, newExchange(context.Background(), nil))
	want := map[string]uint64{
		"http.ingress.fault.delays_injected":             2,
		"http.ingress.fault.aborts_injected":             2,
		"http.ingress.fault.productpage.delays_injected": 1,
		"http.ingress.fault.productpage.aborts_injected": 1,
		"http.ingress.fault.faults_overflow":             0,
	}
	for name, v := range want {
		if got := store.Counter(name).Value(); got != v {
			t.Errorf("%s = %d, want %d", name, got, v)
		}
	}

	off := mustNew(t, &faultv3.HTTPFault{Abort: httpAbort(503, all()), DisableDownstreamClusterStats: true}, store.Scope("http.other.").Filters())
	run(off, newExchange(context.Background(), nil, hdrDownstreamCluster, "productpage"))
	if got := store.Counter("http.other.fault.productpage.aborts_injected").Value(); got != 0 {
		t.Errorf("per-cluster stat with disable_downstream_cluster_stats = %d, want 0", got)
	}
}

func TestFilterMetadata(t *testing.T) {
	md, _ := structpb.NewStruct(map[string]any{"fault": "ratings-abort"})
	f := mustNew(t, &faultv3.HTTPFault{Abort: httpAbort(503, all()), FilterMetadata: md}, nil)
	x := newExchange(context.Background(), nil)
	run(f, x)
	if got := x.Metadata[FilterName]["fault"]; got != "ratings-abort" {
		t.Errorf("metadata = %v, want ratings-abort", got)
	}
}

func TestRegistered(t *testing.T) {
	b, ok := filters.Lookup(TypeURL)
	if !ok {
		t.Fatal("builder not registered")
	}
	fac, err := b(&faultv3.HTTPFault{Abort: httpAbort(503, all())}, filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	x := newExchange(context.Background(), nil)
	fl := fac.NewFilter(x)
	if fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true) != filters.Stop {
		t.Error("registered builder does not abort")
	}
	if _, err := b(&faultv3.FaultAbort{}, filters.Env{}); err == nil {
		t.Error("a config of another type must fail")
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *faultv3.HTTPFault
		want string
	}{
		{"abort status below 200", &faultv3.HTTPFault{Abort: httpAbort(100, all())}, "abort.http_status: 100 is not in [200, 600)"},
		{"abort without type", &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{Percentage: all()}}, "abort.error_type: one of http_status, grpc_status or header_abort is required"},
		{"delay without type", &faultv3.HTTPFault{Delay: &commonfaultv3.FaultDelay{Percentage: all()}}, "delay.fault_delay_secifier: one of fixed_delay or header_delay is required"},
		{"zero delay", &faultv3.HTTPFault{Delay: fixedDelay(0, all())}, "delay.fixed_delay: 0s must be greater than 0"},
		{"bad denominator", &faultv3.HTTPFault{Abort: httpAbort(503, pct(1, 7))}, "abort.percentage.denominator: 7 is not one of HUNDRED, TEN_THOUSAND, MILLION"},
		{"bad header regex", &faultv3.HTTPFault{Headers: []*routev3.HeaderMatcher{{Name: "x", HeaderMatchSpecifier: &routev3.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: regex("(")}}}}, "headers[0].safe_regex_match: regex \"(\""},
		{"rate limit zero", &faultv3.HTTPFault{ResponseRateLimit: &commonfaultv3.FaultRateLimit{LimitType: &commonfaultv3.FaultRateLimit_FixedLimit_{FixedLimit: &commonfaultv3.FaultRateLimit_FixedLimit{}}}}, "response_rate_limit.fixed_limit.limit_kbps: must be at least 1"},
		{"header name empty", &faultv3.HTTPFault{Headers: []*routev3.HeaderMatcher{{}}}, "headers[0].name: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.cfg)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if got := err.Error(); len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Errorf("error = %q, want prefix %q", got, tt.want)
			}
		})
	}
}
