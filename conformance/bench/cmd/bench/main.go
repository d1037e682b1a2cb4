// Command bench runs Waygate's side-by-side load harness: Waygate, nginx,
// HAProxy and Caddy as reverse proxies to one nginx backend, plus the
// backend directly, driven alike in alternating rounds on loopback.
//
//	go run ./conformance/bench/cmd/bench -scenario h1-1k -duration 10s
//	go run ./conformance/bench/cmd/bench -scenario main -out conformance/bench/results/$(date +%F).md
//
// Scenarios: h1-1k, h1-64k, h2-100, fixed-1k, filters, routes-10k,
// idle-10k, push; "main" is the set the committed results cover, "all"
// every one. bookinfo-idle, Waygate alone, records the memory of
// `waygate run` serving deploy/examples/bookinfo idle. Tables go to
// stdout (and -out); progress to stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/waygate/waygate/conformance/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		scenario  = flag.String("scenario", "h1-1k", "scenarios to run, comma-separated, or main, or all")
		duration  = flag.Duration("duration", 10*time.Second, "length of each measured run (whole seconds)")
		rounds    = flag.Int("rounds", 2, "alternating rounds over all targets")
		conns     = flag.Int("conns", 64, "keep-alive connections of the closed-loop loads")
		rate      = flag.Int("rate", 1000, "requests per second of the fixed-rate scenario")
		idleConns = flag.Int("idle-conns", 10000, "connections of the idle scenario")
		only      = flag.String("proxies", "", "only these proxies, comma-separated (waygate,nginx,haproxy,caddy); direct always runs")
		waygate   = flag.String("waygate", "", "waygate binary (default: build ./cmd/waygate)")
		built     = flag.String("waygate-desc", "", "what the -waygate binary was built from (a commit), for the results")
		results   = flag.String("results", "conformance/bench/results", "directory for profiles")
		out       = flag.String("out", "", "also write the markdown results to this file")
		profile   = flag.Bool("profile", true, "save a CPU profile of waygate per scenario (an extra unmeasured run)")
		syscalls  = flag.Bool("syscalls", false, "count each proxy's system calls per request with strace (an extra unmeasured run per proxy)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	spec, bookinfo := withoutName(*scenario, "bookinfo-idle")
	var scs []bench.Scenario
	var err error
	if spec != "" {
		scs, err = bench.SelectScenarios(bench.Scenarios(bench.Settings{Duration: *duration, Conns: *conns, Rate: *rate, IdleConns: *idleConns}), spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	missing := bench.EnsureTools(os.Stderr)
	if reason, ok := missing["wrk"]; ok {
		fmt.Fprintln(os.Stderr, "bench: wrk is required:", reason)
		return 1
	}
	bench.RaiseFileLimit(65536)

	bin, desc := *waygate, *built
	if bin != "" && desc == "" {
		desc = "binary " + bin
	}
	if bin == "" {
		desc = bench.TreeBuild()
		dir, err := os.MkdirTemp("", "waygate-bench-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "waygate")
		if b, err := exec.Command("go", "build", "-o", bin, "github.com/waygate/waygate/cmd/waygate").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: go build ./cmd/waygate: %v\n%s", err, b)
			return 1
		}
	}

	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	bench.WriteHeader(w, append([]string{"go", "run", "./conformance/bench/cmd/bench"}, os.Args[1:]...), desc)

	r := &bench.Runner{WaygateBin: bin, ResultsDir: *results, Rounds: *rounds, Profile: *profile, Syscalls: *syscalls, Log: os.Stderr}
	if *only != "" {
		r.Only = strings.Split(*only, ",")
	}
	for _, name := range []string{"nginx", "haproxy", "caddy"} {
		if reason, ok := missing[name]; ok {
			fmt.Fprintf(w, "- %s is skipped: %s\n", name, reason)
		}
	}
	failed := false
	if bookinfo {
		fmt.Fprintln(os.Stderr, "bookinfo-idle: waygate run on deploy/examples/bookinfo, idle")
		b := bench.BookinfoIdle{Example: "deploy/examples/bookinfo", Requests: 10, Settle: 2 * time.Second}
		dir, err := os.MkdirTemp("", "waygate-bench-bookinfo-")
		if err == nil {
			var ms []bench.BookinfoMemory
			ms, err = b.Run(ctx, bin, dir)
			os.RemoveAll(dir)
			bench.WriteBookinfoMarkdown(w, b, ms)
		}
		if err != nil {
			fmt.Fprintf(w, "### bookinfo-idle\n\nfailed: %v\n\n", err)
			failed = true
		}
	}
	for _, sc := range scs {
		if _, ok := missing["h2load"]; ok && sc.Name == "h2-100" {
			fmt.Fprintf(w, "### %s\n\nskipped: h2load: %s\n\n", sc.Name, missing["h2load"])
			continue
		}
		fmt.Fprintf(os.Stderr, "%s: %s\n", sc.Name, sc.Title)
		res, err := r.Run(ctx, sc)
		if err != nil {
			fmt.Fprintf(w, "### %s\n\nfailed: %v\n\n", sc.Name, err)
			failed = true
			if ctx.Err() != nil {
				break
			}
			continue
		}
		bench.WriteMarkdown(w, res)
		bench.WriteCommands(w, res)
	}
	fmt.Fprintf(w, "Load average after the run: %s.\n", bench.LoadAvg())
	if failed {
		return 1
	}
	return 0
}

// withoutName removes name from a comma-separated list, saying whether
// it was there.
func withoutName(spec, name string) (string, bool) {
	var rest []string
	found := false
	for _, n := range strings.Split(spec, ",") {
		if n = strings.TrimSpace(n); n == name {
			found = true
		} else if n != "" {
			rest = append(rest, n)
		}
	}
	return strings.Join(rest, ","), found
}
