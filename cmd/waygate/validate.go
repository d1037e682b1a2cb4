package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/waygate/waygate/gateway/istio"
)

func init() {
	register("validate", "check Istio configuration files the way the control plane will read them", func(args []string) int {
		return runValidate(args, os.Stdout, os.Stderr)
	})
}

// runValidate loads the files and directories in args, validates them
// together (references between files count) and prints every error and
// warning, one per line in file:line form so editors can jump to them,
// then a summary. The exit code is 1 when there is an error, so the
// command can gate a CI pipeline or a pre-commit hook; 2 for bad usage.
func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "also print info findings (skipped documents of other API groups)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: waygate validate [-v] DIR|FILE ...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths := fs.Args()
	if len(paths) == 0 {
		fs.Usage()
		return 2
	}
	cfg, findings, err := istio.LoadPaths(paths...)
	if err != nil {
		fmt.Fprintln(stderr, "waygate validate:", err)
		return 2
	}
	findings = append(findings, istio.Validate(cfg)...)
	// In file and line order, the order a reader fixes them in.
	sort.SliceStable(findings, func(i, j int) bool {
		if findings[i].File != findings[j].File {
			return findings[i].File < findings[j].File
		}
		return findings[i].Line < findings[j].Line
	})
	var errors, warnings int
	for _, f := range findings {
		switch f.Severity {
		case istio.Error:
			errors++
		case istio.Warning:
			warnings++
		case istio.Info:
			if !*verbose {
				continue
			}
		}
		fmt.Fprintf(stdout, "%s: %s\n", f.Severity, f)
	}
	fmt.Fprintf(stdout, "%s, %s in %s\n", plural(errors, "error"), plural(warnings, "warning"), plural(len(cfg.Origins), "resource"))
	if errors > 0 {
		return 1
	}
	return 0
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprint(n) + " " + word + "s"
}
