package ratelimit

import (
	"sync/atomic"
	"time"
)

// bucket is a token bucket as Envoy's local rate limiter keeps one:
// full at start, refilled by perFill tokens at each whole fill interval,
// never above max.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/type/v3/token_bucket.proto
//
// Its state is one word, updated by compare-and-swap, so that any number
// of streams share it exactly (max tokens in a window, never max+1) and
// no request waits on a lock. Refills are computed lazily from the clock
// rather than by a timer: the high half of the word is the index of the
// fill interval the tokens were counted at, the low half the tokens.
type bucket struct {
	state atomic.Uint64
	spec  *bucketSpec
}

// bucketSpec is the compiled TokenBucket, shared by the dynamic buckets
// a wildcard descriptor creates.
type bucketSpec struct {
	max, perFill uint32
	interval     time.Duration
	// epoch is the time interval 0 starts at.
	epoch time.Time
}

func newBucket(s *bucketSpec) *bucket {
	b := &bucket{spec: s}
	b.state.Store(pack(s.index(time.Now()), s.max))
	return b
}

func pack(index, tokens uint32) uint64       { return uint64(index)<<32 | uint64(tokens) }
func unpack(w uint64) (index, tokens uint32) { return uint32(w >> 32), uint32(w) }

// index is the fill interval now falls in. It wraps after 2^32
// intervals (Envoy's minimum fill interval of 50ms makes that six
// years); the subtraction in refill is modular, so a wrap costs at most
// one refill.
func (s *bucketSpec) index(now time.Time) uint32 {
	return uint32(now.Sub(s.epoch) / s.interval)
}

// refill is the token count at interval now, from tokens counted at
// interval then, and the interval the count is now at. A stream that
// read the clock before another stored a later interval sees a "now"
// behind "then": nothing is refilled and the later interval stays.
func (s *bucketSpec) refill(then, now, tokens uint32) (uint32, uint32) {
	d := int32(now - then)
	if d <= 0 {
		return tokens, then
	}
	t := uint64(tokens) + uint64(d)*uint64(s.perFill)
	if t > uint64(s.max) {
		t = uint64(s.max)
	}
	return uint32(t), now
}

// take consumes one token if there is one, and reports the tokens left
// either way.
func (b *bucket) take(now time.Time) (ok bool, remaining uint32) {
	s := b.spec
	idx := s.index(now)
	for {
		w := b.state.Load()
		then, tokens := unpack(w)
		tokens, at := s.refill(then, idx, tokens)
		if tokens == 0 {
			return false, 0
		}
		if b.state.CompareAndSwap(w, pack(at, tokens-1)) {
			return true, tokens - 1
		}
	}
}

// peek is the tokens available now, without taking one.
func (b *bucket) peek(now time.Time) uint32 {
	then, tokens := unpack(b.state.Load())
	tokens, _ = b.spec.refill(then, b.spec.index(now), tokens)
	return tokens
}

// resetIn is the time until the next fill, for x-ratelimit-reset.
func (s *bucketSpec) resetIn(now time.Time) time.Duration {
	next := s.epoch.Add(time.Duration(s.index(now)+1) * s.interval)
	return next.Sub(now)
}

// fillRate orders buckets from the most restrictive, as Envoy tries the
// matched descriptors: tokens per second.
func (s *bucketSpec) fillRate() float64 {
	return float64(s.perFill) / s.interval.Seconds()
}
