package bench

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// median of the runs, field by field: with alternating rounds the median
// keeps one disturbed run (another build on the machine) out of the
// figure; with two rounds it is their mean.
func median(runs []Result) Result {
	pick := func(f func(Result) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		n := len(v)
		if n == 0 {
			return 0
		}
		if n%2 == 1 {
			return v[n/2]
		}
		return (v[n/2-1] + v[n/2]) / 2
	}
	d := func(f func(Result) time.Duration) time.Duration {
		return time.Duration(pick(func(r Result) float64 { return float64(f(r)) }))
	}
	var m Result
	if len(runs) > 0 {
		m.Target = runs[0].Target
	}
	m.RPS = pick(func(r Result) float64 { return r.RPS })
	m.Requests = int64(pick(func(r Result) float64 { return float64(r.Requests) }))
	m.P50 = d(func(r Result) time.Duration { return r.P50 })
	m.P90 = d(func(r Result) time.Duration { return r.P90 })
	m.P99 = d(func(r Result) time.Duration { return r.P99 })
	m.P999 = d(func(r Result) time.Duration { return r.P999 })
	m.Mean = d(func(r Result) time.Duration { return r.Mean })
	m.CPU = pick(func(r Result) float64 { return r.CPUPer10k() }) // stored per 10k, see cpu10k
	m.PeakKiB = int64(pick(func(r Result) float64 { return float64(r.PeakKiB) }))
	m.Conns = int(pick(func(r Result) float64 { return float64(r.Conns) }))
	m.RSSBeforeKiB = int64(pick(func(r Result) float64 { return float64(r.RSSBeforeKiB) }))
	m.RSSKiB = int64(pick(func(r Result) float64 { return float64(r.RSSKiB) }))
	for _, r := range runs {
		m.Errors += r.Errors // errors are summed: every one counts
	}
	return m
}

// row is one target's median figures, in table units; NaN-free: a
// figure that does not apply is 0 and printed as "–".
type row struct {
	name                      string
	rps, p50, p90, p99, p999  float64 // latencies in µs
	cpu10k, peakMiB, kibConn  float64
	rpsRuns                   []float64
	errors                    int64
	conns                     int
	rssBeforeMiB, rssAfterMiB float64
}

func rows(res *ScenarioResult) []row {
	var out []row
	for _, name := range res.Order {
		runs := res.Runs[name]
		if len(runs) == 0 {
			continue
		}
		m := median(runs)
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		rw := row{name: name, rps: m.RPS, p50: us(m.P50), p90: us(m.P90), p99: us(m.P99), p999: us(m.P999),
			cpu10k: m.CPU, peakMiB: float64(m.PeakKiB) / 1024, errors: m.Errors, conns: m.Conns,
			rssBeforeMiB: float64(m.RSSBeforeKiB) / 1024, rssAfterMiB: float64(m.RSSKiB) / 1024}
		if res.Scenario.Idle {
			var per []float64
			for _, r := range runs {
				per = append(per, r.KiBPerConn())
			}
			sort.Float64s(per)
			rw.kibConn = per[len(per)/2]
			if len(per)%2 == 0 {
				rw.kibConn = (per[len(per)/2-1] + per[len(per)/2]) / 2
			}
		}
		for _, r := range runs {
			rw.rpsRuns = append(rw.rpsRuns, r.RPS)
		}
		if res.Scenario.Name == "h2-100" {
			rw.p50 = us(m.Mean) // h2load: mean only, shown in the p50 column's place
		}
		out = append(out, rw)
	}
	return out
}

// WriteMarkdown renders a scenario's tables: the figures, then each
// figure as ratios to nginx, to Caddy and to direct.
func WriteMarkdown(w io.Writer, res *ScenarioResult) {
	sc := res.Scenario
	fmt.Fprintf(w, "### %s — %s\n\n", sc.Name, sc.Title)
	rs := rows(res)
	find := func(name string) *row {
		for i := range rs {
			if rs[i].name == name {
				return &rs[i]
			}
		}
		return nil
	}
	nginx, caddy, direct := find("nginx"), find("caddy"), find("direct")
	if sc.Idle {
		fmt.Fprintln(w, "| target | connections held | RSS before (MiB) | RSS with connections (MiB) | KiB per connection | ×nginx / ×caddy |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
		for _, r := range rs {
			fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %s |\n", r.name, r.conns, r.rssBeforeMiB, r.rssAfterMiB, r.kibConn,
				ratios(r.kibConn, val(nginx, func(x *row) float64 { return x.kibConn }), val(caddy, func(x *row) float64 { return x.kibConn })))
		}
	} else {
		p50 := "p50"
		if sc.Name == "h2-100" {
			p50 = "mean"
		}
		fmt.Fprintf(w, "| target | req/s | %s | p90 | p99 | p99.9 | errors | CPU s / 10k req | peak RSS (MiB) | req/s per round |\n", p50)
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
		for _, r := range rs {
			var runs []string
			for _, v := range r.rpsRuns {
				runs = append(runs, fmt.Sprintf("%.0f", v))
			}
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %d | %s | %s | %s |\n", r.name, r.rps,
				fmtUs(r.p50), fmtUs(r.p90), fmtUs(r.p99), fmtUs(r.p999), r.errors,
				dash(r.cpu10k, "%.3f"), dash(r.peakMiB, "%.1f"), strings.Join(runs, ", "))
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Ratios, each cell ×nginx / ×caddy / ×direct (req/s: higher is better; the rest: lower is better):")
		fmt.Fprintln(w)
		fmt.Fprintf(w, "| target | req/s | %s | p90 | p99 | p99.9 | CPU / 10k req | peak RSS |\n", p50)
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, r := range rs {
			cell := func(f func(*row) float64) string {
				return ratios(f(&r), val(nginx, f), val(caddy, f), val(direct, f))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name,
				cell(func(x *row) float64 { return x.rps }), cell(func(x *row) float64 { return x.p50 }),
				cell(func(x *row) float64 { return x.p90 }), cell(func(x *row) float64 { return x.p99 }),
				cell(func(x *row) float64 { return x.p999 }), cell(func(x *row) float64 { return x.cpu10k }),
				cell(func(x *row) float64 { return x.peakMiB }))
		}
	}
	fmt.Fprintln(w)
	var notes []string
	for _, name := range sortedKeys(res.Skipped) {
		notes = append(notes, fmt.Sprintf("%s not run: %s", name, firstLine(res.Skipped[name])))
	}
	for _, name := range sortedKeys(res.ReloadErrors) {
		notes = append(notes, fmt.Sprintf("%s: %d configuration pushes failed", name, res.ReloadErrors[name]))
	}
	for _, name := range sortedKeys(res.PushApplied) {
		d := slices.Clone(res.PushApplied[name])
		slices.Sort(d)
		notes = append(notes, fmt.Sprintf("%s: %d pushes serving after p50 %s, p99 %s, max %s from the configuration written; %d later than %s",
			name, len(d), fmtDur(d[len(d)/2]), fmtDur(d[len(d)*99/100]), fmtDur(d[len(d)-1]), res.PushLate[name], res.PushDeadline))
	}
	for _, name := range sortedKeys(res.PushLate) {
		if len(res.PushApplied[name]) == 0 {
			notes = append(notes, fmt.Sprintf("%s: none of %d pushes served within %s", name, res.PushLate[name], res.PushDeadline))
		}
	}
	if !res.PeakReset {
		notes = append(notes, "peak RSS could not be reset before each run: it is the peak since the proxy started")
	}
	for _, n := range notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
	writeSyscalls(w, res.Syscalls)
}

// writeSyscalls renders the system calls per request of each proxy.
func writeSyscalls(w io.Writer, counts []SyscallCount) {
	if len(counts) == 0 {
		return
	}
	fmt.Fprintln(w, "System calls per request (strace -c -f on the proxy's tree, an extra 3 s run; its speed is not a figure):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | requests | syscalls / request | most frequent (calls / request) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | --- |")
	for _, c := range counts {
		var top []string
		for _, t := range c.Top {
			top = append(top, fmt.Sprintf("%s %.2f", t.Name, float64(t.Calls)/float64(max(c.Requests, 1))))
		}
		fmt.Fprintf(w, "| %s | %d | %.2f | %s |\n", c.Target, c.Requests, c.PerRequest(), strings.Join(top, ", "))
	}
	fmt.Fprintln(w)
}

func val(r *row, f func(*row) float64) float64 {
	if r == nil {
		return 0
	}
	return f(r)
}

// ratios formats v over each base, "–" where either is missing.
func ratios(v float64, bases ...float64) string {
	out := make([]string, len(bases))
	for i, b := range bases {
		if v == 0 || b == 0 {
			out[i] = "–"
		} else {
			out[i] = fmt.Sprintf("%.2f", v/b)
		}
	}
	return strings.Join(out, " / ")
}

func dash(v float64, format string) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

// fmtUs prints a latency in µs below a millisecond, in ms above.
func fmtUs(us float64) string {
	switch {
	case us == 0:
		return "–"
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	default:
		return fmt.Sprintf("%.2fms", us/1000)
	}
}

func fmtDur(d time.Duration) string { return fmtUs(float64(d) / float64(time.Microsecond)) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// WriteCommands lists the exact load command run against each target,
// and where the profiles are.
func WriteCommands(w io.Writer, res *ScenarioResult) {
	fmt.Fprintln(w, "<details><summary>commands</summary>")
	fmt.Fprintln(w)
	for _, name := range res.Order {
		fmt.Fprintf(w, "- %s: `%s`\n", name, res.Commands[name])
	}
	for _, name := range sortedKeys(res.Profiles) {
		fmt.Fprintf(w, "- %s profile: `%s`\n", name, res.Profiles[name])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "</details>")
	fmt.Fprintln(w)
}
