package fault

import (
	"context"
	"testing"
	"time"

	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

func TestThrottleTake(t *testing.T) {
	th := &throttle{bytesPerSec: 1024}
	t0 := time.Unix(0, 0)
	tests := []struct {
		at   time.Duration
		n    int
		want time.Duration
	}{
		{0, 512, 500 * time.Millisecond},
		{500 * time.Millisecond, 512, 500 * time.Millisecond},
		{time.Second, 512, 500 * time.Millisecond},
		// Six idle seconds bank only one: 1 KiB goes at once, the next waits.
		{7500 * time.Millisecond, 1024, 0},
		{7500 * time.Millisecond, 1024, time.Second},
	}
	for i, tt := range tests {
		if got := th.take(t0.Add(tt.at), tt.n); got != tt.want {
			t.Errorf("step %d: wait %v, want %v", i, got, tt.want)
		}
	}
}

func rateLimit(l *commonfaultv3.FaultRateLimit) *faultv3.HTTPFault {
	return &faultv3.HTTPFault{ResponseRateLimit: l}
}

func TestResponseRateLimit(t *testing.T) {
	fixed := func(kbps uint64) *commonfaultv3.FaultRateLimit {
		return &commonfaultv3.FaultRateLimit{
			LimitType:  &commonfaultv3.FaultRateLimit_FixedLimit_{FixedLimit: &commonfaultv3.FaultRateLimit_FixedLimit{LimitKbps: kbps}},
			Percentage: all(),
		}
	}
	header := &commonfaultv3.FaultRateLimit{
		LimitType:  &commonfaultv3.FaultRateLimit_HeaderLimit_{HeaderLimit: &commonfaultv3.FaultRateLimit_HeaderLimit{}},
		Percentage: all(),
	}
	tests := []struct {
		name      string
		cfg       *faultv3.HTTPFault
		hdr       []string
		throttled bool
	}{
		{"fixed limit", rateLimit(fixed(64)), nil, true},
		{"header limit", rateLimit(header), []string{hdrThroughput, "64"}, true},
		{"header limit without header", rateLimit(header), nil, false},
		{"header limit zero", rateLimit(header), []string{hdrThroughput, "0"}, false},
		{"header limit percentage zero", rateLimit(header), []string{hdrThroughput, "64", hdrThroughputPercent, "0"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := stats.NewStore()
			f := mustNew(t, tt.cfg, store.Scope("http.ingress.").Filters())
			x := newExchange(context.Background(), nil, tt.hdr...)
			fl := f.NewFilter(x)
			if st := fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true); st != filters.Continue {
				t.Fatalf("request headers: %v", st)
			}
			body := fl.(filters.ResponseBodyFilter)
			// 16 KiB at 64 KiB/s is a quarter of a second.
			start := time.Now()
			for range 4 {
				if st := body.OnResponseBody(x, filters.NewBuffer(make([]byte, 4096)), false); st != filters.Continue {
					t.Fatalf("response body: %v", st)
				}
			}
			took := time.Since(start)
			fl.(filters.DoneFilter).OnDone(x)
			if tt.throttled && took < 200*time.Millisecond {
				t.Errorf("16 KiB at 64 KiB/s took %v, want about 250ms", took)
			}
			var want uint64
			if tt.throttled {
				want = 1
			}
			if got := store.Counter("http.ingress.fault.response_rl_injected").Value(); got != want {
				t.Errorf("response_rl_injected = %d, want %d", got, want)
			}
		})
	}
}

func TestResponseRateLimitCanceled(t *testing.T) {
	f := mustNew(t, rateLimit(&commonfaultv3.FaultRateLimit{
		LimitType:  &commonfaultv3.FaultRateLimit_FixedLimit_{FixedLimit: &commonfaultv3.FaultRateLimit_FixedLimit{LimitKbps: 1}},
		Percentage: all(),
	}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	x := newExchange(ctx, nil)
	fl := f.NewFilter(x)
	fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true)
	time.AfterFunc(20*time.Millisecond, cancel)
	// A MiB at 1 KiB/s would take 17 minutes.
	if st := fl.(filters.ResponseBodyFilter).OnResponseBody(x, filters.NewBuffer(make([]byte, 1<<20)), true); st != filters.Stop {
		t.Errorf("status = %v, want Stop once the downstream is gone", st)
	}
}
