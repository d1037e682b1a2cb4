package wasm

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waygate/waygate/filters"
)

// pool is a plugin's set of instances, about one per core as Envoy runs
// one per worker thread. A stream is pinned to one instance for its
// life (its context lives in that instance's memory); instances share
// nothing but what the host keeps for their vm_id (shared data, queues,
// metrics).
type pool struct {
	cfg    *pluginConfig
	engine *engine
	opts   Options
	env    filters.Env
	log    *slog.Logger
	shared *shared
	grpc   grpcConns

	slots  []slot
	next   atomic.Uint32
	closed atomic.Bool

	vmFailures filters.Counter
	vmCreated  filters.Counter

	// key, registered and refs are guarded by pools' lock (pools.go).
	key        poolKey
	registered bool
	refs       int
}

type slot struct {
	vm atomic.Pointer[vm]
	mu sync.Mutex
	// lastErr and lastTry pace restarts of an instance that fails to
	// start, so a plugin crashing on start is not restarted in a loop.
	lastErr error
	lastTry time.Time
}

// restartBackoff is the least time between two failed starts in a slot.
const restartBackoff = time.Second

var errClosed = errors.New("wasm: plugin closed")

// pick returns an instance for a new stream, starting one in an empty
// or dead slot.
func (p *pool) pick() (*vm, error) {
	i := int(p.next.Add(1)) % len(p.slots)
	if v := p.slots[i].vm.Load(); v != nil && !v.dead.Load() {
		return v, nil
	}
	return p.start(i)
}

// start fills slot i with a fresh instance unless one is running.
func (p *pool) start(i int) (*vm, error) {
	s := &p.slots[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.closed.Load() {
		return nil, errClosed
	}
	if v := s.vm.Load(); v != nil && !v.dead.Load() {
		return v, nil
	}
	if s.lastErr != nil && time.Since(s.lastTry) < restartBackoff {
		return nil, s.lastErr
	}
	s.lastTry = time.Now()
	v, err := newVM(p, i)
	if err != nil {
		s.lastErr = err
		p.log.Error("starting wasm plugin instance", "error", err)
		return nil, err
	}
	s.lastErr = nil
	p.vmCreated.Inc()
	s.vm.Store(v)
	if p.closed.Load() {
		// Closed while starting: do not leak the instance.
		s.vm.Store(nil)
		v.close()
		return nil, errClosed
	}
	return v, nil
}

// failed is called by a dying instance: a fresh one takes its slot.
func (p *pool) failed(v *vm) {
	p.vmFailures.Inc()
	if p.closed.Load() {
		return
	}
	go func() {
		if _, err := p.start(v.slot); err != nil && !errors.Is(err, errClosed) {
			p.log.Warn("replacing failed wasm plugin instance", "error", err)
		}
	}()
}

func (p *pool) close() {
	if p.closed.Swap(true) {
		return
	}
	defer p.grpc.close()
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		if v := s.vm.Swap(nil); v != nil {
			v.close()
		}
		s.mu.Unlock()
	}
}
