package rls

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/waygate/waygate/gateway/rls/rlstest"
)

func newService(t *testing.T, addr, text string, opts Options) *Service {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	opts.Redis = client
	return New(cfg, opts)
}

func request(domain string, kv ...string) *rlsv3.RateLimitRequest {
	d := &commonv3.RateLimitDescriptor{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Entries = append(d.Entries, &commonv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return &rlsv3.RateLimitRequest{Domain: domain, Descriptors: []*commonv3.RateLimitDescriptor{d}, HitsAddend: 1}
}

const perClient = `
domain: edge
descriptors:
- key: remote_address
  rate_limit: {unit: minute, requests_per_unit: 3}
- key: generic_key
  value: shadow
  shadow_mode: true
  rate_limit: {unit: minute, requests_per_unit: 1}
`

// fixedClock is a clock a test moves by hand.
type fixedClock struct{ t atomic.Int64 }

func (c *fixedClock) now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *fixedClock) set(t time.Time)     { c.t.Store(t.UnixNano()) }
func (c *fixedClock) add(d time.Duration) { c.t.Add(int64(d)) }

func TestFixedWindow(t *testing.T) {
	addr := rlstest.StartRedis(t)
	var clock fixedClock
	clock.set(time.Date(2026, 1, 1, 10, 0, 5, 0, time.UTC))
	s := newService(t, addr, perClient, Options{Now: clock.now})
	ctx := context.Background()
	for i, want := range []rlsv3.RateLimitResponse_Code{1, 1, 1, 2, 2} {
		resp, err := s.ShouldRateLimit(ctx, request("edge", "remote_address", "10.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetOverallCode() != want {
			t.Fatalf("hit %d: %v, want %v", i, resp.GetOverallCode(), want)
		}
		st := resp.GetStatuses()[0]
		if st.GetCurrentLimit().GetRequestsPerUnit() != 3 || st.GetDurationUntilReset().GetSeconds() != 55 {
			t.Errorf("hit %d status %v", i, st)
		}
		if want == 1 && st.GetLimitRemaining() != uint32(2-i) {
			t.Errorf("hit %d remaining %d, want %d", i, st.GetLimitRemaining(), 2-i)
		}
	}
	// Another client has its own count.
	if resp, _ := s.ShouldRateLimit(ctx, request("edge", "remote_address", "10.0.0.2")); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
		t.Errorf("other client limited")
	}
	// The next window starts over.
	clock.add(time.Minute)
	if resp, _ := s.ShouldRateLimit(ctx, request("edge", "remote_address", "10.0.0.1")); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
		t.Errorf("next window limited")
	}
	// No limit configured: OK without a current limit.
	resp, _ := s.ShouldRateLimit(ctx, request("edge", "path", "/"))
	if resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || resp.GetStatuses()[0].GetCurrentLimit() != nil {
		t.Errorf("unlimited descriptor: %v", resp)
	}
	// Shadow mode counts but never limits.
	for range 3 {
		if resp, _ := s.ShouldRateLimit(ctx, request("edge", "generic_key", "shadow")); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
			t.Errorf("shadow mode limited")
		}
	}
	if s.ShadowOverLimit.Load() != 2 {
		t.Errorf("shadow over limit = %d, want 2", s.ShadowOverLimit.Load())
	}
}

func TestSlidingWindow(t *testing.T) {
	addr := rlstest.StartRedis(t)
	var clock fixedClock
	clock.set(time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC))
	s := newService(t, addr, perClient, Options{Now: clock.now, SlidingWindow: true})
	ctx := context.Background()
	hit := func() rlsv3.RateLimitResponse_Code {
		resp, err := s.ShouldRateLimit(ctx, request("edge", "remote_address", "10.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetOverallCode()
	}
	for range 3 {
		if hit() != rlsv3.RateLimitResponse_OK {
			t.Fatal("limited inside the limit")
		}
	}
	// 15s into the next minute, 3 × 0.75 of the previous window still
	// count: a fixed window would allow 3 more at once.
	clock.set(time.Date(2026, 1, 1, 10, 1, 15, 0, time.UTC))
	if got := hit(); got != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Errorf("sliding window: %v, want OVER_LIMIT (2.25 + 1 > 3)", got)
	}
	clock.set(time.Date(2026, 1, 1, 10, 1, 50, 0, time.UTC))
	if got := hit(); got != rlsv3.RateLimitResponse_OK {
		t.Errorf("late in the window: %v, want OK", got)
	}
}

// TestReplicasShareOneLimit runs two services over gRPC on loopback
// against one Redis, and sends from many goroutines to both: together
// they allow exactly the limit.
func TestReplicasShareOneLimit(t *testing.T) {
	addr := rlstest.StartRedis(t)
	const limit = `
domain: edge
descriptors:
- key: generic_key
  value: shared
  rate_limit: {unit: hour, requests_per_unit: 50}
`
	var clients []rlsv3.RateLimitServiceClient
	for range 2 {
		s := newService(t, addr, limit, Options{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer()
		rlsv3.RegisterRateLimitServiceServer(gs, s)
		go gs.Serve(ln)
		t.Cleanup(gs.Stop)
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		clients = append(clients, rlsv3.NewRateLimitServiceClient(conn))
	}
	var ok, over atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				resp, err := clients[w%2].ShouldRateLimit(context.Background(), request("edge", "generic_key", "shared"))
				if err != nil {
					t.Error(err)
					return
				}
				if resp.GetOverallCode() == rlsv3.RateLimitResponse_OK {
					ok.Add(1)
				} else {
					over.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 50 || over.Load() != 110 {
		t.Errorf("ok %d over %d, want exactly 50 and 110", ok.Load(), over.Load())
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	addr := rlstest.StartRedis(t)
	s := newService(t, addr, perClient, Options{})
	s.opts.Redis = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	if _, err := s.ShouldRateLimit(context.Background(), request("edge", "remote_address", "1")); err == nil {
		t.Fatal("no error with Redis unreachable")
	}
}
