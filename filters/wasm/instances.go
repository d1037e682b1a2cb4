package wasm

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// instance is what a pool's slots hold: a *vm (Proxy-Wasm) or an
// *hwVM (http-wasm).
type instance[T any] interface {
	*T
	isDead() bool
	close()
}

// instances are a pool's slots, about one per core, for plugins of
// either ABI: picking one round-robin for a new stream, starting an
// instance in an empty or dead slot (starts that keep failing are paced
// by restartBackoff), replacing a failed one, and closing them all.
type instances[T any, P instance[T]] struct {
	slots  []instanceSlot[T]
	next   atomic.Uint32
	closed atomic.Bool

	// start starts an instance for slot i; started counts one that did.
	start   func(i int) (P, error)
	started func()
	log     *slog.Logger
	abi     string // "wasm" or "http-wasm", for the logs
}

type instanceSlot[T any] struct {
	vm atomic.Pointer[T]
	mu sync.Mutex
	// lastErr and lastTry pace restarts of an instance that fails to
	// start, so a plugin crashing on start is not restarted in a loop.
	lastErr error
	lastTry time.Time
}

// restartBackoff is the least time between two failed starts in a slot.
const restartBackoff = time.Second

var errClosed = errors.New("wasm: plugin closed")

func newInstances[T any, P instance[T]](n int, abi string, log *slog.Logger, start func(int) (P, error), started func()) instances[T, P] {
	return instances[T, P]{slots: make([]instanceSlot[T], n), start: start, started: started, log: log, abi: abi}
}

// len is the number of slots.
func (s *instances[T, P]) len() int { return len(s.slots) }

// at is the instance in slot i, nil when there is none; it may be dead.
func (s *instances[T, P]) at(i int) P { return P(s.slots[i].vm.Load()) }

// pick returns an instance for a new stream, starting one in an empty
// or dead slot.
func (s *instances[T, P]) pick() (P, error) {
	i := int(s.next.Add(1)) % len(s.slots)
	if v := s.at(i); v != nil && !v.isDead() {
		return v, nil
	}
	return s.fill(i)
}

// fill starts an instance in slot i unless a live one is there.
func (s *instances[T, P]) fill(i int) (P, error) {
	sl := &s.slots[i]
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if s.closed.Load() {
		return nil, errClosed
	}
	if v := P(sl.vm.Load()); v != nil && !v.isDead() {
		return v, nil
	}
	if sl.lastErr != nil && time.Since(sl.lastTry) < restartBackoff {
		return nil, sl.lastErr
	}
	sl.lastTry = time.Now()
	v, err := s.start(i)
	if err != nil {
		sl.lastErr = err
		s.log.Error("starting "+s.abi+" plugin instance", "error", err)
		return nil, err
	}
	sl.lastErr = nil
	s.started()
	sl.vm.Store((*T)(v))
	if s.closed.Load() {
		// Closed while starting: do not leak the instance.
		sl.vm.Store(nil)
		v.close()
		return nil, errClosed
	}
	return v, nil
}

// replace starts a fresh instance in the slot of one that failed.
func (s *instances[T, P]) replace(i int) {
	if s.closed.Load() {
		return
	}
	go func() {
		if _, err := s.fill(i); err != nil && !errors.Is(err, errClosed) {
			s.log.Warn("replacing failed "+s.abi+" plugin instance", "error", err)
		}
	}()
}

// close closes every instance, and reports false if it was done before.
func (s *instances[T, P]) close() bool {
	if s.closed.Swap(true) {
		return false
	}
	for i := range s.slots {
		sl := &s.slots[i]
		sl.mu.Lock()
		if v := P(sl.vm.Swap(nil)); v != nil {
			v.close()
		}
		sl.mu.Unlock()
	}
	return true
}
