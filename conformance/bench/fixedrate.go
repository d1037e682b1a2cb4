package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// FixedRate is an open-loop load: Rate requests a second for Duration,
// spread over Conns keep-alive connections. Request i is due at
// start + i/Rate, and its latency is measured from that due time, not
// from when a connection got free to send it: a slow answer delays the
// requests queued behind it, and those delays are counted (no
// coordinated omission, as in wrk2). Timer wake-up lag of the load
// generator is included too; the direct baseline shows that floor.
type FixedRate struct {
	Rate     int
	Duration time.Duration
	Conns    int
	Path     string
}

// Run drives the target at the fixed rate.
func (f FixedRate) run(ctx context.Context, t *Target) (Result, error) {
	n := int64(f.Rate) * int64(f.Duration/time.Second)
	interval := time.Second / time.Duration(f.Rate)
	lat := make([]time.Duration, n)
	var next, errs atomic.Int64
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	for range f.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *conn
			defer func() {
				if c != nil {
					c.close()
				}
			}()
			for {
				i := next.Add(1) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				due := start.Add(time.Duration(i) * interval)
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				var err error
				if c == nil {
					c, err = dial(t, f.Path)
				}
				if err == nil {
					err = c.do()
				}
				lat[i] = time.Since(due)
				if err != nil {
					errs.Add(1)
					if c != nil {
						c.close()
						c = nil
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sortDurations(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	r := Result{
		Requests: n, Seconds: elapsed, RPS: float64(n) / elapsed, Errors: errs.Load(),
		P50: percentile(lat, 50), P90: percentile(lat, 90), P99: percentile(lat, 99), P999: percentile(lat, 99.9),
	}
	if n > 0 {
		r.Mean = sum / time.Duration(n)
	}
	return r, ctx.Err()
}
