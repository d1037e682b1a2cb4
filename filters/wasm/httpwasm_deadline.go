package wasm

import (
	"context"
	"sync"
	"time"
)

// hwDeadline is the context of every call into one http-wasm instance:
// the instance's base context with a per-call deadline, re-armed for
// each call rather than a context and a timer allocated per call.
// The call is stopped through the instance's interrupter, or, for code
// that could not be rewritten for one, by wazero closing the module
// when Done closes during a call (WithCloseOnContextDone). pause and resume take the time a host function
// waits on the client out of the guest's budget.
type hwDeadline struct {
	context.Context
	mu      sync.Mutex
	done    chan struct{}
	fired   bool
	expires time.Time
	timer   *time.Timer
	// intr stops the running call; nil when wazero does, on Done.
	intr *interrupter
}

func newHWDeadline(base context.Context) *hwDeadline {
	d := &hwDeadline{Context: base, done: make(chan struct{})}
	d.timer = time.AfterFunc(time.Hour, d.fire)
	d.timer.Stop()
	return d
}

// fire ends the running call, unless it is a late run of the timer from
// a call that ended as its deadline passed: the next call's later
// expiry tells.
func (d *hwDeadline) fire() {
	d.mu.Lock()
	if !d.fired && !d.expires.IsZero() && !time.Now().Before(d.expires) {
		d.fired = true
		d.intr.fire()
		close(d.done)
	}
	d.mu.Unlock()
}

// arm starts a call's deadline; a deadline that fired after its call
// returned is replaced by a fresh channel, so it cannot end this call.
func (d *hwDeadline) arm(timeout time.Duration) {
	d.mu.Lock()
	if d.fired {
		d.fired = false
		d.done = make(chan struct{})
		d.intr.reset()
	}
	d.expires = time.Now().Add(timeout)
	d.mu.Unlock()
	d.timer.Reset(timeout)
}

// disarm ends a call's deadline (or pauses it, until the next arm).
func (d *hwDeadline) disarm() {
	d.timer.Stop()
	d.mu.Lock()
	d.expires = time.Time{}
	d.mu.Unlock()
}

func (d *hwDeadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

func (d *hwDeadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fired {
		return context.DeadlineExceeded
	}
	return nil
}

func (d *hwDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }
