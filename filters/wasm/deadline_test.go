package wasm

import (
	"context"
	"testing"
	"time"
)

// TestDeadline checks the watchdog's bounds: a call running past the
// timeout is ended after between 1 and 1.25 times it (with slack for a
// busy machine), calls shorter than the timeout are never ended however
// many there are, and a deadline that fired does not end the next call.
func TestDeadline(t *testing.T) {
	const timeout = 40 * time.Millisecond
	d := newDeadline(context.Background())
	defer d.stop()

	start := time.Now()
	d.arm(timeout)
	select {
	case <-d.Done():
	case <-time.After(20 * timeout):
		t.Fatal("a call past its deadline was never ended")
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("a call was ended after %v, before its timeout %v", took, timeout)
	}
	if d.Err() != context.DeadlineExceeded {
		t.Errorf("Err() = %v, want DeadlineExceeded", d.Err())
	}
	d.disarm()

	// Short calls back to back for several timeouts.
	d.arm(timeout)
	if d.Err() != nil {
		t.Fatalf("the next call starts ended: %v", d.Err())
	}
	done := d.Done()
	d.disarm()
	for end := time.Now().Add(4 * timeout); time.Now().Before(end); {
		d.arm(timeout)
		time.Sleep(timeout / 8)
		d.disarm()
	}
	select {
	case <-done:
		t.Fatal("short calls were ended")
	default:
	}
}

// TestUntimedPlugin runs a plugin with no call deadline (a negative
// CallTimeout), compiled without the checks that make calls stoppable.
func TestUntimedPlugin(t *testing.T) {
	f := newFactory(t, pluginConf(t, "rawabi", "mode=count value=A", rootID("alpha")), Options{PoolSize: 1, CallTimeout: -1})
	x := exchange()
	fl := f.NewFilter(x).(*filter)
	defer fl.OnDone(x)
	fl.OnRequestHeaders(x, true)
	if got := x.Request.Header.Get("X-Alpha-Config"); got != "A" {
		t.Errorf("x-alpha-config = %q, want A", got)
	}
}
