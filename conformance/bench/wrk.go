package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrkScript makes wrk print its summary as one parsable line, with the
// p99.9 its --latency table lacks. Latencies are microseconds.
const wrkScript = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKBENCH requests=%d duration=%d connect=%d read=%d write=%d timeout=%d status=%d p50=%d p90=%d p99=%d p999=%d mean=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.mean))
end
`

// Wrk is one closed-loop load: Threads wrk threads keeping Conns
// keep-alive connections busy for Duration.
type Wrk struct {
	Threads, Conns int
	Duration       time.Duration
	Path           string
	// Close sends Connection: close, so every request opens a new
	// connection (and, over TLS, makes a new handshake).
	Close bool
}

// Args is the exact wrk command line for a target (for the results).
func (w Wrk) Args(t *Target, script string) []string {
	args := []string{"wrk", "-t" + strconv.Itoa(w.Threads), "-c" + strconv.Itoa(w.Conns),
		"-d" + formatSeconds(w.Duration), "-s", script}
	for k, v := range t.Headers {
		args = append(args, "-H", k+": "+v)
	}
	if w.Close {
		args = append(args, "-H", "Connection: close")
	}
	return append(args, t.url(w.Path))
}

// Run drives the target and parses wrk's summary.
func (w Wrk) Run(ctx context.Context, t *Target, dir string) (Result, error) {
	script := filepath.Join(dir, "summary.lua")
	if _, err := os.Stat(script); err != nil {
		if err := writeFile(script, wrkScript); err != nil {
			return Result{}, err
		}
	}
	argv := w.Args(t, script)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (Result, error) {
	i := strings.Index(out, "WRKBENCH ")
	if i < 0 {
		return Result{}, fmt.Errorf("wrk printed no summary: %s", out)
	}
	line, _, _ := strings.Cut(out[i+len("WRKBENCH "):], "\n")
	v := map[string]int64{}
	for _, f := range strings.Fields(line) {
		k, val, _ := strings.Cut(f, "=")
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return Result{}, fmt.Errorf("wrk summary %q: %v", f, err)
		}
		v[k] = n
	}
	us := func(k string) time.Duration { return time.Duration(v[k]) * time.Microsecond }
	r := Result{
		Requests: v["requests"],
		Seconds:  float64(v["duration"]) / 1e6,
		P50:      us("p50"), P90: us("p90"), P99: us("p99"), P999: us("p999"), Mean: us("mean"),
		Errors: v["connect"] + v["read"] + v["write"] + v["timeout"] + v["status"],
	}
	if r.Seconds > 0 {
		r.RPS = float64(r.Requests) / r.Seconds
	}
	return r, nil
}

func formatSeconds(d time.Duration) string {
	return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s"
}
