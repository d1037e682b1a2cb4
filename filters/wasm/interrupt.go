package wasm

import (
	"context"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero/api"

	"github.com/waygate/waygate/filters/wasm/preempt"
)

// interrupter stops a call running in one instance of a module the
// host rewrote with preempt: every loop header of such a module reads
// the exported interrupt global and traps when it is set, so a guest
// looping forever ends at its next iteration.
//
// This replaces wazero's RuntimeConfig.WithCloseOnContextDone, which
// with v1.12.0 starts a goroutine for every call into the guest and
// leaves native code for Go at every loop iteration to check whether
// the module was closed: most of the cost of a no-op plugin. A module
// preempt cannot rewrite (an instruction it does not know, a start
// section) is compiled with WithCloseOnContextDone instead, and its
// instances have no interrupter.
type interrupter struct{ g api.MutableGlobal }

// newInterrupter is mod's interrupter, or nil when mod was not rewritten.
func newInterrupter(mod api.Module) *interrupter {
	g, _ := mod.ExportedGlobal(preempt.ExportName).(api.MutableGlobal)
	if g == nil {
		return nil
	}
	return &interrupter{g: g}
}

// fire makes the running call, if any, trap at its next loop header.
// It may be called from any goroutine.
func (i *interrupter) fire() {
	if i != nil {
		i.g.Set(1)
	}
}

// reset clears a fire, before a call. Calls into an instance are
// serialized, so no call runs while it is reset.
func (i *interrupter) reset() {
	if i != nil {
		i.g.Set(0)
	}
}

// bound fires when ctx ends, for the calls made under ctx (an
// instance's start, bounded by the start timeout), until stop is
// called. A fire that comes after the last of those calls returned is
// undone by stop, so that it cannot end the instance's next call.
func (i *interrupter) bound(ctx context.Context) (stop func()) {
	if i == nil || ctx.Done() == nil {
		return func() {}
	}
	var mu sync.Mutex
	stopped, fired := false, false
	stopAfter := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			fired = true
			i.fire()
		}
	})
	return func() {
		stopAfter()
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if fired {
			i.reset()
		}
	}
}

// runStart runs the module's start function, which preempt moved out
// of instantiation (where no call can be interrupted) into an export:
// first, as instantiation would have.
func runStart(ctx context.Context, mod api.Module) error {
	f := mod.ExportedFunction(preempt.StartExport)
	if f == nil {
		return nil
	}
	if _, err := f.Call(ctx); err != nil {
		return fmt.Errorf("start function: %w", err)
	}
	return nil
}
