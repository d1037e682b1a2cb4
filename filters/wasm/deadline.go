package wasm

import (
	"context"
	"sync"
	"time"
)

// deadline is the context of every call into one instance: the
// instance's base context (which carries the instance for hostcalls)
// with a per-call deadline, re-armed for each call instead of
// allocating a context and a timer per call. wazero closes the module
// when Done is closed during a call (RuntimeConfig.WithCloseOnContextDone),
// which is how a plugin that loops forever is stopped.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#memory-and-cpu-limits
type deadline struct {
	context.Context
	mu      sync.Mutex
	done    chan struct{}
	fired   bool
	expires time.Time
	timer   *time.Timer
}

func newDeadline(base context.Context) *deadline {
	d := &deadline{Context: base, done: make(chan struct{})}
	d.timer = time.AfterFunc(time.Hour, d.fire)
	d.timer.Stop()
	return d
}

// fire ends the running call. A late run of the timer's function, left
// from a call that ended just as its deadline passed, finds the next
// call's later expiry and does nothing.
func (d *deadline) fire() {
	d.mu.Lock()
	if !d.fired && !time.Now().Before(d.expires) {
		d.fired = true
		close(d.done)
	}
	d.mu.Unlock()
}

// arm starts a call's deadline. A deadline that fired after its call
// returned (a race lost by a hair) is replaced by a fresh channel, so
// it cannot end the next call.
func (d *deadline) arm(timeout time.Duration) {
	d.mu.Lock()
	if d.fired {
		d.fired = false
		d.done = make(chan struct{})
	}
	d.expires = time.Now().Add(timeout)
	d.mu.Unlock()
	d.timer.Reset(timeout)
}

// disarm ends a call's deadline.
func (d *deadline) disarm() { d.timer.Stop() }

func (d *deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

func (d *deadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fired {
		return context.DeadlineExceeded
	}
	return nil
}

func (d *deadline) Deadline() (time.Time, bool) { return time.Time{}, false }
