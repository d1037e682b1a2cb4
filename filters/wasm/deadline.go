package wasm

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// deadline is the context of every call into one instance: the
// instance's base context (which carries the instance for hostcalls)
// whose Done channel closes when a call runs past the call timeout.
// The call is stopped through the instance's interrupter, or, for code
// that could not be rewritten for one, by wazero closing the module
// when Done is closed during a call (WithCloseOnContextDone).
//
// A call costs two counter increments and an uncontended lock: no
// timer is armed per call. A watchdog shared by every instance with the
// same timeout samples the counters four times per timeout and ends a
// call it finds running, the same one, at five samples in a row: after
// between 1 and 1.25 times the timeout. The watchdog holds deadlines
// weakly: an instance that is gone leaves it by itself.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#memory-and-cpu-limits
type deadline struct {
	context.Context
	w *watchdog

	// seq counts arms and disarms: it is odd while a call runs.
	seq atomic.Uint64
	// mu orders arm against fire, so that a deadline fired as its call
	// returned never ends the next call.
	mu    sync.Mutex
	done  atomic.Pointer[chan struct{}]
	fired atomic.Bool
	// intr stops the running call; nil when wazero does, on Done.
	intr *interrupter

	// The watchdog's view, guarded by the watchdog's lock.
	seen    uint64
	strikes int
}

func newDeadline(base context.Context) *deadline {
	d := &deadline{Context: base}
	ch := make(chan struct{})
	d.done.Store(&ch)
	return d
}

// arm starts a call that may run for timeout. Calls into one instance
// are serialized, so arm is never called concurrently.
func (d *deadline) arm(timeout time.Duration) {
	if timeout <= 0 {
		// No deadline: the module cannot be stopped (see Options).
		d.seq.Add(1)
		return
	}
	if d.w == nil || d.w.timeout != timeout {
		d.stop()
		d.w = watchdogFor(timeout)
		d.w.add(d)
	}
	d.mu.Lock()
	if d.fired.Load() {
		ch := make(chan struct{})
		d.done.Store(&ch)
		d.fired.Store(false)
		d.intr.reset()
	}
	d.seq.Add(1)
	d.mu.Unlock()
}

// disarm ends a call.
func (d *deadline) disarm() { d.seq.Add(1) }

// stop lets go of the watchdog, for an instance that is done.
func (d *deadline) stop() {
	if d.w != nil {
		d.w.remove(d)
	}
}

// fire ends the call numbered seq if it is still running.
func (d *deadline) fire(seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seq.Load() == seq && !d.fired.Load() {
		d.fired.Store(true)
		d.intr.fire()
		close(*d.done.Load())
	}
}

func (d *deadline) Done() <-chan struct{} { return *d.done.Load() }

func (d *deadline) Err() error {
	if d.fired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

func (d *deadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// watchdog samples the deadlines of one timeout.
type watchdog struct {
	timeout time.Duration
	mu      sync.Mutex
	ds      map[weak.Pointer[deadline]]struct{}
	stop    chan struct{}
}

// watchdogSamples is how many samples a call must be seen running in
// to be ended: the first, then one per quarter of the timeout.
const watchdogSamples = 5

var watchdogs = struct {
	sync.Mutex
	m map[time.Duration]*watchdog
}{m: map[time.Duration]*watchdog{}}

func watchdogFor(timeout time.Duration) *watchdog {
	watchdogs.Lock()
	defer watchdogs.Unlock()
	w := watchdogs.m[timeout]
	if w == nil {
		w = &watchdog{timeout: timeout, ds: map[weak.Pointer[deadline]]struct{}{}}
		watchdogs.m[timeout] = w
	}
	return w
}

func (w *watchdog) add(d *deadline) {
	watchdogs.Lock()
	defer watchdogs.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ds[weak.Make(d)] = struct{}{}
	if w.stop == nil {
		w.stop = make(chan struct{})
		go w.run(w.stop)
	}
}

// remove drops d; the last one stops the watchdog's goroutine.
func (w *watchdog) remove(d *deadline) {
	watchdogs.Lock()
	defer watchdogs.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.ds, weak.Make(d))
	w.stopIfIdle()
}

// stopIfIdle stops the goroutine of a watchdog left with no deadline.
// w.mu is held.
func (w *watchdog) stopIfIdle() {
	if len(w.ds) == 0 && w.stop != nil {
		close(w.stop)
		w.stop = nil
	}
}

func (w *watchdog) run(stop chan struct{}) {
	t := time.NewTicker(max(w.timeout/(watchdogSamples-1), time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		for wp := range w.ds {
			d := wp.Value()
			if d == nil {
				delete(w.ds, wp)
				continue
			}
			seq := d.seq.Load()
			switch {
			case seq%2 == 0:
				d.strikes = 0
			case seq != d.seen:
				d.seen, d.strikes = seq, 1
			default:
				d.strikes++
				if d.strikes >= watchdogSamples {
					d.fire(seq)
				}
			}
		}
		if len(w.ds) == 0 && w.stop == stop {
			w.stop = nil
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}
