// Command conformance runs Waygate's conformance scenarios against the
// real waygate binary and prints a pass/fail table per scenario, the
// figures behind statistical checks, and a summary:
//
//	go run ./conformance/cmd/conformance [-run REGEX] [-markdown]
//
// It exits 1 when a scenario fails that known_failures.yaml does not
// list, or when a listed one passes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/waygate/waygate/conformance"
)

func main() { os.Exit(run()) }

func run() int {
	root := moduleRoot()
	runRE := flag.String("run", "", "run only the scenarios whose name matches this regular expression")
	dir := flag.String("scenarios", filepath.Join(root, "conformance", "scenarios"), "directory of scenarios")
	knownFile := flag.String("known", filepath.Join(root, "conformance", "known_failures.yaml"), "list of known failures")
	bin := flag.String("waygate", "", "waygate binary to test (default: build cmd/waygate)")
	parallel := flag.Int("parallel", 2, "scenarios run at once")
	markdown := flag.Bool("markdown", false, "also print the summary as a Markdown table, as README.md shows it")
	flag.Parse()

	all, err := conformance.LoadAll(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 2
	}
	known, err := conformance.LoadKnownFailures(*knownFile, all)
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 2
	}
	scenarios := all
	if *runRE != "" {
		re, err := regexp.Compile(*runRE)
		if err != nil {
			fmt.Fprintln(os.Stderr, "conformance: -run:", err)
			return 2
		}
		scenarios = nil
		for _, s := range all {
			if re.MatchString(s.Name) {
				scenarios = append(scenarios, s)
			}
		}
	}
	if len(scenarios) == 0 {
		fmt.Fprintln(os.Stderr, "conformance: no scenario matches", *runRE)
		return 2
	}
	if *bin == "" {
		tmp, err := os.MkdirTemp("", "waygate-conformance-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "conformance:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		if *bin, err = conformance.BuildWaygate(tmp); err != nil {
			fmt.Fprintln(os.Stderr, "conformance:", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results := conformance.RunAll(ctx, *bin, scenarios, *parallel, func(r conformance.Result) {
		conformance.PrintResult(os.Stdout, r, known)
	})
	conformance.PrintSummary(os.Stdout, results, known)
	if *markdown {
		describe := map[string]string{}
		for _, s := range scenarios {
			describe[s.Name] = s.Description
		}
		fmt.Println()
		conformance.PrintMarkdown(os.Stdout, results, known, describe)
	}
	code := 0
	for _, r := range results {
		if _, ok := conformance.Judge(r, known); !ok {
			code = 1
			if r.Log != "" {
				fmt.Fprintf(os.Stderr, "\n--- %s: gateway log tail\n%s\n", r.Scenario, tail(r.Log, 4000))
			}
		}
	}
	return code
}

// moduleRoot is the directory of the main module's go.mod, so the
// defaults work from anywhere in the repository.
func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "."
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "."
	}
	return filepath.Dir(mod)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
