package ratelimit

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/stats"
)

func percent(n uint32) *corev3.RuntimeFractionalPercent {
	return &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: n, Denominator: typev3.FractionalPercent_HUNDRED}}
}

func tokens(max, perFill uint32, every time.Duration) *typev3.TokenBucket {
	return &typev3.TokenBucket{MaxTokens: max, TokensPerFill: wrapperspb.UInt32(perFill), FillInterval: durationpb.New(every)}
}

// enforcing is a LocalRateLimit enabled and enforced for every request.
func enforcing(tb *typev3.TokenBucket) *localv3.LocalRateLimit {
	return &localv3.LocalRateLimit{StatPrefix: "rl", TokenBucket: tb, FilterEnabled: percent(100), FilterEnforced: percent(100)}
}

// send runs one request through the factory and returns the status it
// gets: the local reply's, or 200 when the filter let it through.
func send(t testing.TB, f *LocalFactory, x *filters.Exchange) (int, http.Header) {
	t.Helper()
	fl := f.NewFilter(x)
	if fl == nil {
		return 200, http.Header{}
	}
	lf := fl.(*localFilter)
	st := lf.OnRequestHeaders(x, true)
	if st == filters.Stop {
		r := x.LocalReply()
		x.Response = filters.Response{Status: r.Status, Header: r.Header}
	} else {
		x.Response = filters.Response{Status: 200, Header: http.Header{}}
	}
	lf.OnResponseHeaders(x, true)
	return x.Response.Status, x.Response.Header
}

func TestLocalDefaultBucket(t *testing.T) {
	hour := time.Hour
	tests := []struct {
		name string
		cfg  *localv3.LocalRateLimit
		n    int
		want []int
	}{
		{"max tokens then 429", enforcing(tokens(3, 3, hour)), 5, []int{200, 200, 200, 429, 429}},
		{"filter_enabled unset means off", &localv3.LocalRateLimit{StatPrefix: "rl", TokenBucket: tokens(1, 1, hour), FilterEnforced: percent(100)}, 3, []int{200, 200, 200}},
		{"filter_enforced unset means shadow", &localv3.LocalRateLimit{StatPrefix: "rl", TokenBucket: tokens(1, 1, hour), FilterEnabled: percent(100)}, 3, []int{200, 200, 200}},
		{"enforced 0 percent", &localv3.LocalRateLimit{StatPrefix: "rl", TokenBucket: tokens(1, 1, hour), FilterEnabled: percent(100), FilterEnforced: percent(0)}, 2, []int{200, 200}},
		{"custom status", func() *localv3.LocalRateLimit {
			c := enforcing(tokens(1, 1, hour))
			c.Status = &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}
			return c
		}(), 2, []int{200, 503}},
		{"no bucket no descriptors lets everything through", &localv3.LocalRateLimit{StatPrefix: "rl", FilterEnabled: percent(100), FilterEnforced: percent(100)}, 3, []int{200, 200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewLocal(tt.cfg, filters.Env{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tt.n; i++ {
				got, _ := send(t, f, exchange(nil, "10.0.0.1:1000", "/"))
				if got != tt.want[i] {
					t.Errorf("request %d: status %d, want %d", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestLocalReply(t *testing.T) {
	cfg := enforcing(tokens(1, 1, time.Hour))
	cfg.EnableXRatelimitHeaders = ratelimitv3.XRateLimitHeadersRFCVersion_DRAFT_VERSION_03
	cfg.ResponseHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-limited-by", Value: "waygate"}}}
	cfg.EnableRetryAfterHeader = true
	cfg.RequestHeadersToAddWhenNotEnforced = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-would-limit", Value: "1"}}}
	f, err := NewLocal(cfg, filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	st, h := send(t, f, exchange(nil, "10.0.0.1:1000", "/"))
	if st != 200 || h.Get(hdrLimit) != "1" || h.Get(hdrRemaining) != "0" || h.Get(hdrReset) == "" {
		t.Errorf("first: %d %v", st, h)
	}
	x := exchange(nil, "10.0.0.1:1000", "/")
	st, h = send(t, f, x)
	r := x.LocalReply()
	if st != 429 || r.Body != "local_rate_limited" || r.Details != "local_rate_limited" || r.Flag != "RL" {
		t.Fatalf("second: %d %+v", st, r)
	}
	if h.Get("X-Limited-By") != "waygate" || h.Get(hdrLimit) != "1" || h.Get(hdrRemaining) != "0" {
		t.Errorf("second headers: %v", h)
	}
	if reset := h.Get(hdrReset); reset != "3600" && reset != "3599" {
		t.Errorf("x-ratelimit-reset = %q, want about 3600", reset)
	}
	if h.Get("Retry-After") == "" {
		t.Errorf("no Retry-After")
	}
	if x.Info.ResponseFlags[0] != "RL" {
		t.Errorf("flags %v", x.Info.ResponseFlags)
	}

	// gRPC requests get a gRPC status.
	x = exchange(nil, "10.0.0.1:1000", "/", "Content-Type", "application/grpc")
	send(t, f, x)
	if r := x.LocalReply(); r.Status != 200 || r.Header.Get("Grpc-Status") != "14" {
		t.Errorf("grpc reply %d %v", r.Status, r.Header)
	}

	// Not enforced: the request goes on with the configured headers.
	cfg.FilterEnforced = nil
	f, _ = NewLocal(cfg, filters.Env{})
	send(t, f, exchange(nil, "10.0.0.1:1000", "/"))
	x = exchange(nil, "10.0.0.1:1000", "/")
	if st, _ := send(t, f, x); st != 200 || x.Request.Header.Get("X-Would-Limit") != "1" {
		t.Errorf("not enforced: %d %v", st, x.Request.Header)
	}
}

func TestLocalStats(t *testing.T) {
	store := stats.NewStore()
	scope := store.Scope("http.ingress.")
	f, err := NewLocal(enforcing(tokens(2, 2, time.Hour)), filters.Env{Stats: scope.Filters()})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		send(t, f, exchange(nil, "10.0.0.1:1000", "/"))
	}
	for name, want := range map[string]uint64{"enabled": 5, "ok": 2, "rate_limited": 3, "enforced": 3} {
		if got := store.Counter("http.ingress.rl.http_local_rate_limit." + name).Value(); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

// TestLocalDescriptors limits by route rate_limits actions: a fixed
// descriptor for one user, a wildcard one giving every other user their
// own bucket, and a remote address wildcard.
func TestLocalDescriptors(t *testing.T) {
	perUser := &localv3.LocalRateLimit{
		StatPrefix: "rl", FilterEnabled: percent(100), FilterEnforced: percent(100),
		TokenBucket: tokens(100, 100, time.Hour),
		Descriptors: []*ratelimitv3.LocalRateLimitDescriptor{
			{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "user", Value: "alice"}}, TokenBucket: tokens(1, 1, time.Hour)},
			{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "user"}}, TokenBucket: tokens(2, 2, time.Hour)},
			{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address"}}, TokenBucket: tokens(3, 3, time.Hour)},
		},
	}
	routePer, err := anypb.New(perUser)
	if err != nil {
		t.Fatal(err)
	}
	users := prefixRoute("/users", "c1", limit(headerAction("x-user", "user")))
	users.TypedPerFilterConfig = map[string]*anypb.Any{LocalFilterName: routePer}
	clients := prefixRoute("/clients", "c1", limit(remoteAction()))
	clients.TypedPerFilterConfig = map[string]*anypb.Any{LocalFilterName: routePer}
	tbl := table(t, nil, users, clients, prefixRoute("/", "c1"))

	listener := &localv3.LocalRateLimit{StatPrefix: "listener", FilterEnabled: percent(100), FilterEnforced: percent(100), TokenBucket: tokens(1000, 1000, time.Hour)}
	f, err := NewLocal(listener, filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		client, path, user string
		want               int
	}{
		{"10.0.0.1:1", "/users", "alice", 200},
		{"10.0.0.1:1", "/users", "alice", 429},
		{"10.0.0.1:1", "/users", "bob", 200},
		{"10.0.0.1:1", "/users", "bob", 200},
		{"10.0.0.1:1", "/users", "bob", 429},
		{"10.0.0.1:1", "/users", "carol", 200},
		{"10.0.0.1:1", "/users", "", 200}, // no header: no descriptor, default bucket
		{"10.0.0.2:1", "/clients", "", 200},
		{"10.0.0.2:2", "/clients", "", 200},
		{"10.0.0.2:3", "/clients", "", 200},
		{"10.0.0.2:4", "/clients", "", 429},
		{"10.0.0.3:1", "/clients", "", 200},
		{"10.0.0.2:5", "/other", "", 200}, // the listener's config
	}
	for i, s := range steps {
		var hdr []string
		if s.user != "" {
			hdr = []string{"X-User", s.user}
		}
		if got, _ := send(t, f, exchange(tbl, s.client, s.path, hdr...)); got != s.want {
			t.Errorf("step %d (%s %s %s): %d, want %d", i, s.client, s.path, s.user, got, s.want)
		}
	}
}

func TestLocalDefaultBucketConsumption(t *testing.T) {
	for _, always := range []bool{true, false} {
		cfg := enforcing(tokens(2, 2, time.Hour))
		cfg.AlwaysConsumeDefaultTokenBucket = wrapperspb.Bool(always)
		cfg.Descriptors = []*ratelimitv3.LocalRateLimitDescriptor{{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "generic_key", Value: "a"}}, TokenBucket: tokens(10, 10, time.Hour)}}
		cfg.RateLimits = []*routev3.RateLimit{limit(genericAction("", "a"))}
		f, err := NewLocal(cfg, filters.Env{})
		if err != nil {
			t.Fatal(err)
		}
		ok := 0
		for range 5 {
			if st, _ := send(t, f, exchange(nil, "10.0.0.1:1", "/")); st == 200 {
				ok++
			}
		}
		want := 2
		if !always {
			want = 5
		}
		if ok != want {
			t.Errorf("always_consume_default_token_bucket=%v: %d allowed, want %d", always, ok, want)
		}
	}
}

func TestLocalPerConnection(t *testing.T) {
	cfg := enforcing(tokens(1, 1, time.Hour))
	cfg.LocalRateLimitPerDownstreamConnection = true
	f, err := NewLocal(cfg, filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		client string
		want   int
	}{{"10.0.0.1:1", 200}, {"10.0.0.1:1", 429}, {"10.0.0.1:2", 200}, {"10.0.0.1:2", 429}} {
		if got, _ := send(t, f, exchange(nil, c.client, "/")); got != c.want {
			t.Errorf("%s: %d, want %d", c.client, got, c.want)
		}
	}
}

// TestLocalExactUnderConcurrency sends from many goroutines at once:
// exactly max_tokens requests pass in the window, shared across
// connections.
func TestLocalExactUnderConcurrency(t *testing.T) {
	const max, workers, each = 500, 64, 40
	f, err := NewLocal(enforcing(tokens(max, max, time.Hour)), filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range each {
				x := exchange(nil, "10.0.0.1:"+itoa(w+1), "/")
				if st, _ := send(t, f, x); st == 200 {
					ok.Add(1)
				} else {
					limited.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != max || limited.Load() != workers*each-max {
		t.Errorf("allowed %d, limited %d; want exactly %d allowed", ok.Load(), limited.Load(), max)
	}
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestLocalCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *localv3.LocalRateLimit
		want string
	}{
		{"no stat prefix", &localv3.LocalRateLimit{}, "stat_prefix"},
		{"zero max tokens", &localv3.LocalRateLimit{StatPrefix: "a", TokenBucket: tokens(0, 1, time.Second)}, "token_bucket.max_tokens"},
		{"short interval", &localv3.LocalRateLimit{StatPrefix: "a", TokenBucket: tokens(1, 1, time.Millisecond)}, "token_bucket.fill_interval"},
		{"descriptor without bucket", &localv3.LocalRateLimit{StatPrefix: "a", Descriptors: []*ratelimitv3.LocalRateLimitDescriptor{{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "k", Value: "v"}}}}}, "descriptors[0].token_bucket"},
		{"descriptor without entries", &localv3.LocalRateLimit{StatPrefix: "a", Descriptors: []*ratelimitv3.LocalRateLimitDescriptor{{TokenBucket: tokens(1, 1, time.Second)}}}, "descriptors[0].entries"},
		{"bad percent", &localv3.LocalRateLimit{StatPrefix: "a", FilterEnabled: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Denominator: 7}}}, "filter_enabled.default_value"},
		{"stage", &localv3.LocalRateLimit{StatPrefix: "a", Stage: 11}, "stage"},
		{"status", &localv3.LocalRateLimit{StatPrefix: "a", Status: &typev3.HttpStatus{Code: 200}}, "status.code"},
		{"bad action", &localv3.LocalRateLimit{StatPrefix: "a", RateLimits: []*routev3.RateLimit{limit(genericAction("k", ""))}}, "rate_limits[0].actions[0]: generic_key.descriptor_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileLocal(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
}

func TestBucketRefill(t *testing.T) {
	epoch := time.Now()
	b := newBucket(&bucketSpec{max: 3, perFill: 2, interval: time.Second, epoch: epoch})
	at := func(d time.Duration) time.Time { return epoch.Add(d) }
	for i := range 3 {
		if ok, _ := b.take(at(10 * time.Millisecond)); !ok {
			t.Fatalf("take %d failed", i)
		}
	}
	if ok, _ := b.take(at(999 * time.Millisecond)); ok {
		t.Fatal("took a 4th token in the first interval")
	}
	if ok, left := b.take(at(1001 * time.Millisecond)); !ok || left != 1 {
		t.Fatalf("after one fill: ok=%v left=%d, want true 1", ok, left)
	}
	// A stream that read the clock earlier does not refill again.
	if ok, left := b.take(at(500 * time.Millisecond)); !ok || left != 0 {
		t.Fatalf("late reader: ok=%v left=%d, want true 0", ok, left)
	}
	if got := b.peek(at(10 * time.Second)); got != 3 {
		t.Fatalf("after many fills: %d tokens, want the max 3", got)
	}
}

func BenchmarkLocalAllowed(b *testing.B) {
	f, err := NewLocal(enforcing(tokens(1<<30, 1<<30, time.Hour)), filters.Env{})
	if err != nil {
		b.Fatal(err)
	}
	x := exchange(nil, "10.0.0.1:1", "/")
	b.ReportAllocs()
	for b.Loop() {
		fl := f.NewFilter(x).(*localFilter)
		fl.OnRequestHeaders(x, true)
	}
}

func BenchmarkLocalWildcardDescriptor(b *testing.B) {
	cfg := enforcing(tokens(1<<30, 1<<30, time.Hour))
	cfg.Descriptors = []*ratelimitv3.LocalRateLimitDescriptor{{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address"}}, TokenBucket: tokens(1<<30, 1<<30, time.Hour)}}
	cfg.RateLimits = []*routev3.RateLimit{limit(remoteAction())}
	f, err := NewLocal(cfg, filters.Env{})
	if err != nil {
		b.Fatal(err)
	}
	x := exchange(nil, "10.0.0.1:1", "/")
	b.ReportAllocs()
	for b.Loop() {
		fl := f.NewFilter(x).(*localFilter)
		fl.OnRequestHeaders(x, true)
	}
}

// TestLocalBucketsOutlivePushes compiles the same route twice, as a
// route table push does: the second table's requests count in the
// first one's buckets.
func TestLocalBucketsOutlivePushes(t *testing.T) {
	per, err := anypb.New(enforcing(tokens(2, 2, time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	route := func() *routev3.Route {
		r := prefixRoute("/", "c1")
		r.TypedPerFilterConfig = map[string]*anypb.Any{LocalFilterName: per}
		return r
	}
	f, err := NewLocal(&localv3.LocalRateLimit{StatPrefix: "listener"}, filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	before, after := table(t, nil, route()), table(t, nil, route())
	for i, tbl := range []*router.Table{before, before, after} {
		want := 200
		if i == 2 {
			want = 429
		}
		if st, _ := send(t, f, exchange(tbl, "10.0.0.1:1", "/")); st != want {
			t.Errorf("request %d: %d, want %d", i, st, want)
		}
	}
}
