package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// H2load is the HTTP/2 load: Conns h2c connections (prior knowledge)
// with Streams concurrent streams each, for Duration.
type H2load struct {
	Conns, Streams int
	Duration       time.Duration
	Path           string
}

// Args is the exact h2load command line for a target.
func (h H2load) Args(t *Target) []string {
	args := []string{"h2load", "-t1", "-c" + strconv.Itoa(h.Conns), "-m" + strconv.Itoa(h.Streams),
		"-D", strconv.Itoa(int(h.Duration / time.Second)), "--warm-up-time=1"}
	for k, v := range t.Headers {
		args = append(args, "-H", k+": "+v)
	}
	return append(args, "http://"+t.H2Addr+h.Path)
}

// Run drives the target. h2load reports the mean time per request but no
// percentiles, so only the mean is filled in.
func (h H2load) run(ctx context.Context, t *Target) (Result, error) {
	argv := h.Args(t)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("h2load: %v: %s", err, out)
	}
	return parseH2load(string(out))
}

var (
	h2Finished = regexp.MustCompile(`finished in ([0-9.]+)(m?s), ([0-9.]+) req/s`)
	h2Requests = regexp.MustCompile(`requests: (\d+) total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed`)
	h2Status   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2Time     = regexp.MustCompile(`time for request:\s+([0-9.]+)(us|ms|s)\s+([0-9.]+)(us|ms|s)\s+([0-9.]+)(us|ms|s)`)
)

func parseH2load(out string) (Result, error) {
	f := h2Finished.FindStringSubmatch(out)
	q := h2Requests.FindStringSubmatch(out)
	s := h2Status.FindStringSubmatch(out)
	if f == nil || q == nil || s == nil {
		return Result{}, fmt.Errorf("h2load output not understood: %s", out)
	}
	num := func(x string) int64 { n, _ := strconv.ParseInt(x, 10, 64); return n }
	var r Result
	r.RPS, _ = strconv.ParseFloat(f[3], 64)
	r.Seconds, _ = strconv.ParseFloat(f[1], 64)
	if f[2] == "ms" {
		r.Seconds /= 1000
	}
	r.Requests = num(q[2])
	// Failed streams (errored and timed out ones included) and 4xx/5xx
	// answers. In duration mode h2load's totals and status counts do not
	// add up exactly (streams in flight at the end), so they are not
	// subtracted from each other.
	r.Errors = num(q[3]) + num(s[3]) + num(s[4])
	if m := h2Time.FindStringSubmatch(out); m != nil {
		r.Mean = parseUnit(m[5], m[6])
	}
	return r, nil
}

func parseUnit(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return time.Duration(f * float64(time.Microsecond))
	case "ms":
		return time.Duration(f * float64(time.Millisecond))
	}
	return time.Duration(f * float64(time.Second))
}
