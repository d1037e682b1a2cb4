package client

import (
	"errors"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := backoff{initial: 500 * time.Millisecond, max: 30 * time.Second}
	for _, tc := range []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 250 * time.Millisecond, 500 * time.Millisecond},
		{1, 500 * time.Millisecond, time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{6, 15 * time.Second, 30 * time.Second},
		{100, 15 * time.Second, 30 * time.Second},
	} {
		for range 50 {
			if d := b.delay(tc.attempt); d < tc.min || d > tc.max {
				t.Fatalf("delay(%d) = %v, want within [%v, %v]", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}

func TestOptionsBackoffDefaults(t *testing.T) {
	for _, tc := range []struct {
		name              string
		opts              Options
		initial, maxDelay time.Duration
	}{
		{"zero means defaults", Options{}, DefaultBackoffInitial, DefaultBackoffMax},
		{"set", Options{BackoffInitial: time.Second, BackoffMax: time.Minute}, time.Second, time.Minute},
		{"max below initial", Options{BackoffInitial: time.Minute, BackoffMax: time.Second}, time.Minute, time.Minute},
	} {
		if b := tc.opts.backoff(); b.initial != tc.initial || b.max != tc.maxDelay {
			t.Errorf("%s: backoff = %+v", tc.name, b)
		}
	}
}

// TestNACKPacing checks that only a version rejected again and again waits,
// with growing delays, and that a new version or an accept resets that.
func TestNACKPacing(t *testing.T) {
	c := New(Options{BackoffInitial: 100 * time.Millisecond, BackoffMax: time.Second}, newTestHandler())
	bad := errors.New("bad")
	steps := []struct {
		version  string
		min, max time.Duration
	}{
		{"2", 0, 0},
		{"2", 50 * time.Millisecond, 100 * time.Millisecond},
		{"2", 100 * time.Millisecond, 200 * time.Millisecond},
		{"3", 0, 0},
		{"3", 50 * time.Millisecond, 100 * time.Millisecond},
	}
	for i, s := range steps {
		if d := c.rejected(lds, s.version, "n", bad); d < s.min || d > s.max {
			t.Fatalf("step %d: delay %v, want within [%v, %v]", i, d, s.min, s.max)
		}
	}
	for range 3 {
		if d := c.rejected(lds, "", "n", bad); d != 0 {
			t.Fatalf("a NACK of an unversioned response waits %v", d)
		}
	}
	if err := c.apply(c.types[lds], "4", "n", nil, nil); err != nil {
		t.Fatal(err)
	}
	if d := c.rejected(lds, "3", "n", bad); d != 0 {
		t.Fatalf("after an accept the first NACK waits %v", d)
	}
}
