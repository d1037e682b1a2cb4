package http1

import (
	"context"
	"sync"
	"sync/atomic"
)

// A Watch runs a function when a connection's request context ends,
// as context.AfterFunc does, without its allocations: the upstream pool
// watches the downstream's context for every request it sends (to
// abort the exchange when the client goes away), and context.AfterFunc
// costs two allocations and an insertion into, then a deletion from,
// the parent's map of children each time. A Watch is made once (by an
// upstream connection) and reused.
type Watch struct {
	// F runs, on the goroutine that cancels the context, when the
	// context ends while the watch is on. It must not block.
	F func()

	// on is the watchers w is linked into; it and the links change
	// under that watchers' lock.
	on   atomic.Pointer[watchers]
	prev *Watch
	next *Watch
}

// watchers are the watches on one connection's context.
type watchers struct {
	mu    sync.Mutex
	head  *Watch
	ended bool
}

type watchKey struct{}

// Start arranges for w.F to run when ctx ends and reports true, if ctx
// is a request context of this package's server, or derives from one
// only by values (so that it ends exactly when the connection's does).
// Otherwise it does nothing and reports false: the caller uses
// context.AfterFunc. A context already ended runs w.F at once.
func (w *Watch) Start(ctx context.Context) bool {
	ws, _ := ctx.Value(watchKey{}).(*watchers)
	if ws == nil {
		return false
	}
	// The connection's context carries its watchers by value; any
	// context that can end on its own has its own Done channel.
	if c, _ := ctx.Value(watchedCtxKey{}).(context.Context); c == nil || c.Done() != ctx.Done() {
		return false
	}
	ws.mu.Lock()
	if ws.ended {
		ws.mu.Unlock()
		w.F()
		return true
	}
	w.on.Store(ws)
	w.prev, w.next = nil, ws.head
	if ws.head != nil {
		ws.head.prev = w
	}
	ws.head = w
	ws.mu.Unlock()
	return true
}

// Stop takes the watch off and reports whether it did so before F ran,
// as the stop function of context.AfterFunc does.
func (w *Watch) Stop() bool {
	ws := w.on.Load()
	if ws == nil {
		return false
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w.on.Load() != ws {
		return false
	}
	ws.unlink(w)
	return true
}

func (ws *watchers) unlink(w *Watch) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		ws.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.on.Store(nil)
	w.prev, w.next = nil, nil
}

// end runs every watch once the context ended.
func (ws *watchers) end() {
	ws.mu.Lock()
	ws.ended = true
	var fs []func()
	for w := ws.head; w != nil; w = ws.head {
		fs = append(fs, w.F)
		ws.unlink(w)
	}
	ws.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

type watchedCtxKey struct{}

// watchedCtx is the connection's context: the cancelable one, with its
// watchers and itself reachable by value.
type watchedCtx struct {
	context.Context
	ws *watchers
}

func (c *watchedCtx) Value(key any) any {
	switch key.(type) {
	case watchKey:
		return c.ws
	case watchedCtxKey:
		return c.Context
	}
	return c.Context.Value(key)
}
