package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SyscallCount is how many system calls a target made per request under
// the scenario's load, from `strace -c -f` attached to its process tree
// for one extra run. strace slows the target many times over, so the
// run's speed means nothing; the count per request does: it is what a
// proxy's design costs the kernel per request (reads, writes, epoll,
// futex wake-ups), and on loopback most of a proxy's time is there.
type SyscallCount struct {
	Target   string
	Requests int64
	Calls    int64
	// Top are the most frequent calls, with their counts.
	Top []SyscallCalls
}

// SyscallCalls is one row of strace's summary.
type SyscallCalls struct {
	Name  string
	Calls int64
}

// PerRequest is system calls per request.
func (s SyscallCount) PerRequest() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Calls) / float64(s.Requests)
}

// countSyscalls runs a shortened closed-loop load against t with strace
// attached to every process of its tree.
func countSyscalls(ctx context.Context, t *Target, dir, path string) (SyscallCount, error) {
	pids := t.PIDs()
	if len(pids) == 0 {
		return SyscallCount{}, fmt.Errorf("no process")
	}
	out := filepath.Join(dir, "strace-"+strings.ReplaceAll(t.Name, "+", "-")+".txt")
	args := []string{"-c", "-f", "-o", out}
	for _, p := range pids {
		args = append(args, "-p", strconv.Itoa(p))
	}
	cmd := exec.Command("strace", args...)
	if err := cmd.Start(); err != nil {
		return SyscallCount{}, fmt.Errorf("strace: %w", err)
	}
	// strace needs a moment to attach to every thread.
	time.Sleep(time.Second)
	res, err := Wrk{Threads: 1, Conns: 64, Duration: 3 * time.Second, Path: path}.Run(ctx, t, dir)
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if err != nil {
		return SyscallCount{}, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return SyscallCount{}, err
	}
	sc := parseStraceSummary(string(b))
	sc.Target, sc.Requests = t.Name, res.Requests
	return sc, nil
}

// parseStraceSummary reads `strace -c` output: rows of
// "% time  seconds  usecs/call  calls  [errors]  syscall", then "total".
func parseStraceSummary(s string) SyscallCount {
	var sc SyscallCount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || strings.HasPrefix(line, "%") || strings.HasPrefix(line, "-") {
			continue
		}
		calls, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			continue
		}
		name := f[len(f)-1]
		if name == "total" {
			sc.Calls = calls
			continue
		}
		sc.Top = append(sc.Top, SyscallCalls{Name: name, Calls: calls})
	}
	sort.Slice(sc.Top, func(i, j int) bool { return sc.Top[i].Calls > sc.Top[j].Calls })
	if len(sc.Top) > 6 {
		sc.Top = sc.Top[:6]
	}
	return sc
}
