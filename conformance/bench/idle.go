package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Idle opens Conns keep-alive connections to a target, sends one request
// on each (so every server has allocated whatever a used connection
// keeps), leaves them idle for Settle, and reports the target's RSS
// growth. The connections are closed at the end.
type Idle struct {
	Conns  int
	Settle time.Duration
	Path   string
	// Hold, when set, runs while the connections are open (a heap
	// profile is taken there).
	Hold func()
}

// Run measures the memory the target holds per idle connection.
func (id Idle) run(ctx context.Context, t *Target) (Result, error) {
	pids := t.PIDs()
	// A few requests first, so one-time allocations (upstream
	// connections, pools) are in the "before" figure.
	if c, err := dial(t, id.Path); err == nil {
		for range 100 {
			if c.do() != nil {
				break
			}
		}
		c.close()
	}
	time.Sleep(500 * time.Millisecond)
	before := memKiB(pids, "VmRSS")

	conns := make([]*conn, id.Conns)
	var errs atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(id.Conns) || ctx.Err() != nil {
					return
				}
				c, err := dial(t, id.Path)
				if err == nil {
					if err = c.do(); err != nil {
						c.close()
					}
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	}()
	time.Sleep(id.Settle)
	after := memKiB(t.PIDs(), "VmRSS")
	if id.Hold != nil {
		id.Hold()
	}
	open := id.Conns - int(errs.Load())
	return Result{Conns: open, RSSBeforeKiB: before, RSSKiB: after, Errors: errs.Load(), Requests: int64(open)}, ctx.Err()
}

// RaiseFileLimit lifts the open-file limit of this process (and so of
// every server it starts) to want, or to the hard limit if it cannot be
// raised that far: 10,000 idle connections need 10,000 descriptors on
// each side.
func RaiseFileLimit(want uint64) uint64 {
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Cur >= want {
		return lim.Cur
	}
	try := syscall.Rlimit{Cur: want, Max: max(want, lim.Max)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try) == nil {
		return want
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

// fileLimit is this process's open-file limit, which the servers it
// starts inherit.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}
