package router

import (
	"testing"
	"time"
)

func TestFormatTime(t *testing.T) {
	ts := time.Date(2026, 1, 2, 15, 4, 5, 123456789, time.UTC)
	for spec, want := range map[string]string{
		"%Y-%m-%dT%H:%M:%S":  "2026-01-02T15:04:05",
		"%E3S|%E6S|%E9S":     "05.123|05.123456|05.123456789",
		"%f|%3f|%6f":         "123456789|123|123456",
		"%s":                 "1767366245",
		"%y %j %e %b %B":     "26 002  2 Jan January",
		"%a %A %p %z %Z":     "Fri Friday PM +0000 UTC",
		"%T %F %D %R %% end": "15:04:05 2026-01-02 01/02/26 15:04 % end",
	} {
		tf, err := compileTimeFormat(spec)
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		if got := formatTime(ts, tf); got != want {
			t.Errorf("%q: got %q, want %q", spec, got, want)
		}
	}
	if got := formatTime(ts, nil); got != "2026-01-02T15:04:05.123Z" {
		t.Errorf("default: %q", got)
	}
}

func TestCompileFormatErrors(t *testing.T) {
	for _, s := range []string{"%", "50%", "%REQ%", "%REQ()%", "%PROTOCOL(x)%", "%REQ(x", "%REQ(x):0%", "%START_TIME(%Q)%", "%lower%", "%UNKNOWN_THING%"} {
		if _, err := compileFormat(s); err == nil {
			t.Errorf("compileFormat(%q) succeeded, want an error", s)
		}
	}
	for _, s := range []string{"", "plain", "%%", "a%%b", "%REQ(x-a?x-b):10%", "%START_TIME(%s.%3f)%"} {
		if _, err := compileFormat(s); err != nil {
			t.Errorf("compileFormat(%q): %v", s, err)
		}
	}
}
