package wasm

import (
	"sync"
	"sync/atomic"
	"time"
)

// closeGrace bounds how long a closed factory waits for its streams.
const closeGrace = time.Minute

// retirement is how a factory of either ABI lets go of its instances
// once its config is out of use: after the close delay, during which
// connections accepted with the old config may still bring requests,
// and when no stream it created is left (closeGrace at most). Requests
// in flight on a replaced config so finish with their plugin.
type retirement struct {
	// active counts the streams created and not done.
	active  atomic.Int64
	closing atomic.Bool
	expired atomic.Bool // closing, and the delay has passed
	once    sync.Once
	delay   time.Duration
	release func()
}

func newRetirement(delay time.Duration, release func()) retirement {
	return retirement{delay: delay, release: release}
}

// begin counts a new stream.
func (r *retirement) begin() { r.active.Add(1) }

// done is called once per stream, when it ends.
func (r *retirement) done() {
	if r.active.Add(-1) == 0 && r.expired.Load() {
		r.shutdown()
	}
}

// Close lets go of the instances once the config is out of use: the
// factories of both ABIs are io.Closers through it. The last factory of
// a shared pool stops its instances and frees the code.
func (r *retirement) Close() error {
	if r.closing.Swap(true) {
		return nil
	}
	time.AfterFunc(r.delay, func() {
		r.expired.Store(true)
		if r.active.Load() == 0 {
			r.shutdown()
		}
	})
	time.AfterFunc(closeGrace, r.shutdown)
	return nil
}

func (r *retirement) shutdown() { r.once.Do(r.release) }
