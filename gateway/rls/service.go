package rls

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Options configure a Service.
type Options struct {
	// Redis is the client of the Redis every replica shares.
	Redis redis.UniversalClient
	// Prefix starts every Redis key, so several services can share one
	// Redis ("waygate_rl_" when empty).
	Prefix string
	// SlidingWindow counts in a sliding window instead of fixed ones.
	SlidingWindow bool
	Log           *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service implements envoy.service.ratelimit.v3.RateLimitService.
type Service struct {
	rlsv3.UnimplementedRateLimitServiceServer
	opts Options
	cfg  atomic.Pointer[Config]

	// Counts of answers, for the operator.
	OverLimit, OK, ShadowOverLimit atomic.Uint64
}

// New returns a Service answering from cfg.
func New(cfg *Config, opts Options) *Service {
	if opts.Prefix == "" {
		opts.Prefix = "waygate_rl_"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{opts: opts}
	s.cfg.Store(cfg)
	return s
}

// SetConfig replaces the configuration; calls in flight finish on the
// old one.
func (s *Service) SetConfig(cfg *Config) { s.cfg.Store(cfg) }

// check is one descriptor's counting job.
type check struct {
	lim     *limit
	shadow  bool
	key     string // current window
	prevKey string // previous window, for the sliding window
	weight  float64
	reset   time.Duration
	incr    *redis.IntCmd
	prev    *redis.StringCmd
}

// ShouldRateLimit counts one hit (hits_addend, at least 1) on every
// descriptor that has a limit, in one Redis pipeline, and answers
// OVER_LIMIT when any of them is past its limit and not in shadow mode.
// A descriptor without a limit is OK with no current_limit, as in
// envoyproxy/ratelimit.
func (s *Service) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	if req.GetDomain() == "" {
		return nil, status.Error(codes.InvalidArgument, "domain must not be empty")
	}
	if len(req.GetDescriptors()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "descriptors must not be empty")
	}
	cfg := s.cfg.Load()
	now := s.opts.Now()
	hits := int64(max(req.GetHitsAddend(), 1))
	checks := make([]check, len(req.GetDescriptors()))
	pipe := s.opts.Redis.Pipeline()
	queued := 0
	var entries []entry
	for i, d := range req.GetDescriptors() {
		entries = entries[:0]
		for _, e := range d.GetEntries() {
			entries = append(entries, entry{e.GetKey(), e.GetValue()})
		}
		lim, shadow := cfg.find(req.GetDomain(), entries)
		if lim == nil || lim.unlimited {
			continue
		}
		n := hits
		if h := d.GetHitsAddend(); h != nil {
			n = int64(h.GetValue())
		}
		c := &checks[i]
		c.lim, c.shadow = lim, shadow
		w := lim.window
		start := now.Truncate(w)
		c.reset = start.Add(w).Sub(now)
		base := s.opts.Prefix + cacheKey(req.GetDomain(), entries) + "_"
		c.key = base + strconv.FormatInt(start.Unix(), 10)
		ttl := w
		if s.opts.SlidingWindow {
			ttl = 2 * w
			c.prevKey = base + strconv.FormatInt(start.Add(-w).Unix(), 10)
			c.weight = 1 - float64(now.Sub(start))/float64(w)
			c.prev = pipe.Get(ctx, c.prevKey)
		}
		c.incr = pipe.IncrBy(ctx, c.key, n)
		pipe.Expire(ctx, c.key, ttl)
		queued++
	}
	if queued > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			s.opts.Log.Warn("redis failed", "err", err)
			return nil, status.Errorf(codes.Unavailable, "redis: %v", err)
		}
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK, Statuses: make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(checks))}
	for i := range checks {
		c := &checks[i]
		st := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
		resp.Statuses[i] = st
		if c.lim == nil {
			continue
		}
		count := float64(c.incr.Val())
		if c.prev != nil {
			if p, err := c.prev.Int64(); err == nil {
				count += float64(p) * c.weight
			}
		}
		limit := float64(c.lim.perUnit)
		st.CurrentLimit = c.lim.proto
		st.DurationUntilReset = durationpb.New((c.reset + time.Second - 1).Truncate(time.Second))
		if count > limit {
			if c.shadow {
				s.ShadowOverLimit.Add(1)
				continue
			}
			st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
			continue
		}
		st.LimitRemaining = uint32(limit - count)
	}
	if resp.OverallCode == rlsv3.RateLimitResponse_OVER_LIMIT {
		s.OverLimit.Add(1)
	} else {
		s.OK.Add(1)
	}
	return resp, nil
}

// cacheKey is envoyproxy/ratelimit's key: the domain and each entry's
// key and value joined by "_".
func cacheKey(domain string, entries []entry) string {
	var b strings.Builder
	b.WriteString(domain)
	for _, e := range entries {
		b.WriteByte('_')
		b.WriteString(e.key)
		b.WriteByte('_')
		b.WriteString(e.value)
	}
	return b.String()
}
