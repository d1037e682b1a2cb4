package conformance

import (
	"context"
	"sync"
)

// RunAll runs the scenarios, parallel at a time (each has its own
// gateway and backends, so they do not interfere), calls done as each
// finishes, and returns the results in the scenarios' order.
func RunAll(ctx context.Context, bin string, scenarios []*Scenario, parallel int, done func(Result)) []Result {
	if parallel < 1 {
		parallel = 1
	}
	results := make([]Result, len(scenarios))
	sem := make(chan struct{}, parallel)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, s := range scenarios {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := Run(ctx, bin, s)
			results[i] = r
			mu.Lock()
			defer mu.Unlock()
			if done != nil {
				done(r)
			}
		}()
	}
	wg.Wait()
	return results
}
