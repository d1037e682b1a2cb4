package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Runner runs scenarios: it starts the backend and every proxy, drives
// them in alternating rounds and collects the results.
type Runner struct {
	WaygateBin string
	// ResultsDir receives CPU profiles of Waygate (profiles/).
	ResultsDir string
	Rounds     int
	// Only, when set, limits the proxies to these names ("direct" is
	// always run: every ratio needs it).
	Only []string
	// Profile takes a CPU profile of each Waygate target in an extra,
	// unmeasured run per scenario.
	Profile bool
	// Syscalls counts each proxy's system calls per request with strace
	// in an extra, unmeasured run of closed-loop scenarios.
	Syscalls bool
	Log      io.Writer
}

// ScenarioResult is everything one scenario measured.
type ScenarioResult struct {
	Scenario Scenario
	// Order is the targets in round order; Runs their results per round.
	Order    []string
	Runs     map[string][]Result
	Commands map[string]string
	// Skipped names targets that could not run, with the reason.
	Skipped  map[string]string
	Profiles map[string]string // target -> pprof -top file
	// PeakReset says whether VmHWM could be reset before each run.
	PeakReset    bool
	ReloadErrors map[string]int
	// PushApplied is, per target that can tell, how long each push
	// took from the configuration written to the change serving;
	// PushLate counts pushes not serving by PushDeadline.
	PushApplied  map[string][]time.Duration
	PushLate     map[string]int
	PushDeadline time.Duration
	Syscalls     []SyscallCount
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

// Run runs one scenario.
func (r *Runner) Run(ctx context.Context, sc Scenario) (*ScenarioResult, error) {
	tmp, err := os.MkdirTemp("", "waygate-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// nginx workers run as nobody and must read the backend's files.
	_ = os.Chmod(tmp, 0o755)

	var tlsFiles *TLSFiles
	if sc.TLS {
		if tlsFiles, err = NewTLSFiles(filepath.Join(tmp, "tls")); err != nil {
			return nil, err
		}
	}
	backend, err := StartBackend(filepath.Join(tmp, "backend"), tlsFiles)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	defer backend.Close()

	res := &ScenarioResult{Scenario: sc, Runs: map[string][]Result{}, Commands: map[string]string{},
		Skipped: map[string]string{}, Profiles: map[string]string{}, ReloadErrors: map[string]int{}, PeakReset: true,
		PushApplied: map[string][]time.Duration{}, PushLate: map[string]int{}}
	targets := []*Target{}
	if !sc.Idle {
		targets = append(targets, backend.Direct(sc.TLS))
	}
	setup := Setup{Backend: backend.Addr, Routes: sc.Routes, TLS: tlsFiles}
	launches := map[string]launch{}
	start := func(p Proxy, s Setup, label string) {
		s.Dir = filepath.Join(tmp, label)
		launches[label] = launch{p, s}
		t, err := launches[label].start()
		if err != nil {
			res.Skipped[label] = err.Error()
			r.logf("  %s: not started: %v", label, err)
			return
		}
		targets = append(targets, t)
	}
	for _, p := range Proxies(r.WaygateBin) {
		if len(r.Only) > 0 && !slices.Contains(r.Only, p.Name) {
			continue
		}
		start(p, setup, p.Name)
		if sc.Filters && p.Name == "waygate" {
			fs, err := NewFilterSetup(filepath.Join(tmp, "wasm"))
			if err != nil {
				return nil, err
			}
			withFilters := setup
			withFilters.Filters = fs
			start(p, withFilters, "waygate+filters")
		}
	}
	defer func() {
		for _, t := range targets {
			t.Close()
		}
	}()
	loadDir := filepath.Join(tmp, "load")
	if err := os.MkdirAll(loadDir, 0o755); err != nil {
		return nil, err
	}
	for _, t := range targets {
		res.Order = append(res.Order, t.Name)
		res.Commands[t.Name] = sc.Load.Command(t, loadDir)
		if !sc.Idle {
			if err := warmUp(ctx, t, loadDir, sc.Path); err != nil {
				return nil, fmt.Errorf("warm-up %s: %w", t.Name, err)
			}
		}
	}

	for round := 1; round <= r.Rounds; round++ {
		for i, t := range targets {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// Memory per idle connection is measured from a fresh
			// process each round: after a first run, Go heaps and
			// nginx pools keep what they grew, and a later "before"
			// figure would already hold the connections' memory.
			if sc.Idle && round > 1 {
				t.Close()
				fresh, err := launches[t.Name].start()
				if err != nil {
					targets = slices.Delete(targets, i, i+1)
					return nil, fmt.Errorf("restart %s: %w", t.Name, err)
				}
				targets[i], t = fresh, fresh
			}
			out, err := r.measure(ctx, sc, t, loadDir, res)
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", t.Name, round, err)
			}
			out.Target = t.Name
			res.Runs[t.Name] = append(res.Runs[t.Name], out)
			r.logf("  round %d %-16s %s", round, t.Name, summaryLine(sc, out))
		}
	}
	if r.Profile {
		for _, t := range targets {
			if t.Admin == "" {
				continue
			}
			file, err := r.profile(ctx, sc, t, loadDir)
			if err != nil {
				r.logf("  profile %s: %v", t.Name, err)
				continue
			}
			res.Profiles[t.Name] = file
		}
	}
	if _, closedLoop := sc.Load.(Wrk); r.Syscalls && closedLoop {
		for _, t := range targets {
			if t.proc == nil {
				continue
			}
			count, err := countSyscalls(ctx, t, loadDir, sc.Path)
			if err != nil {
				r.logf("  syscalls %s: %v", t.Name, err)
				continue
			}
			res.Syscalls = append(res.Syscalls, count)
		}
	}
	return res, nil
}

// launch is how a target was started, to start it again afresh.
type launch struct {
	proxy Proxy
	setup Setup
}

func (l launch) start() (*Target, error) {
	if err := os.RemoveAll(l.setup.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.setup.Dir, 0o755); err != nil {
		return nil, err
	}
	return l.proxy.Start(l.setup)
}

// measure runs the load once against t, with the target's CPU time and
// peak memory read around it, and a push every second if asked.
func (r *Runner) measure(ctx context.Context, sc Scenario, t *Target, dir string, res *ScenarioResult) (Result, error) {
	pids := t.PIDs()
	if len(pids) > 0 && !resetPeak(pids) {
		res.PeakReset = false
	}
	cpu0 := cpuSeconds(pids)
	stopPush := r.pushEverySecond(sc, t, res)
	out, err := sc.Load.Run(ctx, t, dir)
	stopPush()
	if err != nil {
		return out, err
	}
	pids = t.PIDs()
	if len(pids) > 0 {
		out.CPU = cpuSeconds(pids) - cpu0
		out.PeakKiB = memKiB(pids, "VmHWM")
	}
	time.Sleep(300 * time.Millisecond)
	return out, nil
}

// pushEverySecond reloads the target's configuration once a second
// until the returned function is called; failed reloads are counted.
func (r *Runner) pushEverySecond(sc Scenario, t *Target, res *ScenarioResult) func() {
	if !sc.Push || t.Reload == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		every := cmp.Or(sc.PushEvery, time.Second)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-tick.C:
				start := time.Now()
				if err := t.Reload(n); err != nil {
					res.ReloadErrors[t.Name]++
					r.logf("  reload %s: %v", t.Name, err)
					continue
				}
				if t.Applied != nil && res.PushApplied != nil {
					res.PushDeadline = every - 100*time.Millisecond
					if took, ok := waitApplied(t, n, start, res.PushDeadline, done); ok {
						res.PushApplied[t.Name] = append(res.PushApplied[t.Name], took)
					} else if !closed(done) {
						// (A push the end of the load cut short
						// counts neither way.)
						res.PushLate[t.Name]++
					}
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitApplied polls until push n serves, and says how long after start;
// it gives up after deadline (shortly before the next push).
func waitApplied(t *Target, n int, start time.Time, deadline time.Duration, done <-chan struct{}) (time.Duration, bool) {
	for {
		if t.Applied(n) {
			return time.Since(start), true
		}
		if time.Since(start) > deadline {
			return 0, false
		}
		select {
		case <-done:
			return 0, false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func summaryLine(sc Scenario, r Result) string {
	if sc.Idle {
		return fmt.Sprintf("%d conns, RSS %.1f -> %.1f MiB, %.1f KiB/conn, %d errors",
			r.Conns, float64(r.RSSBeforeKiB)/1024, float64(r.RSSKiB)/1024, r.KiBPerConn(), r.Errors)
	}
	return fmt.Sprintf("%8.0f req/s  p50 %s p99 %s p99.9 %s  errors %d  cpu %.2fs/10k  peak %.1f MiB",
		r.RPS, fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.P999), r.Errors, r.CPUPer10k(), float64(r.PeakKiB)/1024)
}
