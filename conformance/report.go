package conformance

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// PrintResult writes one scenario's pass/fail table: a row per check,
// with the figures behind statistical and load checks.
func PrintResult(w io.Writer, r Result, known map[string]string) {
	v, _ := Judge(r, known)
	fmt.Fprintf(w, "\n=== %s: %s (%v)\n", r.Scenario, v, r.Took.Round(100*time.Millisecond))
	if reason, ok := known[r.Scenario]; ok {
		fmt.Fprintf(w, "    known failure: %s\n", reason)
	}
	if r.Err != "" {
		fmt.Fprintf(w, "    could not run: %s\n", r.Err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    step\tcheck\tresult\tfigures / reason")
	for _, c := range r.Checks {
		verdict := "pass"
		if !c.Pass {
			verdict = "FAIL"
		}
		lines := append([]string(nil), c.Figures...)
		if c.Detail != "" {
			lines = append(lines, c.Detail)
		}
		if len(lines) == 0 {
			lines = []string{""}
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", c.Step, c.Check, verdict, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "    \t\t\t%s\n", l)
		}
	}
	tw.Flush()
}

// PrintSummary writes the table of every scenario's verdict, the reason
// of each failure included: nothing fails silently.
func PrintSummary(w io.Writer, results []Result, known map[string]string) {
	fmt.Fprintln(w, "\n=== summary")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tverdict\ttime\treason")
	for _, r := range results {
		v, _ := Judge(r, known)
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", r.Scenario, v, r.Took.Round(100*time.Millisecond), reason(r, known))
	}
	tw.Flush()
}

// PrintMarkdown writes the summary as the README's table.
func PrintMarkdown(w io.Writer, results []Result, known map[string]string, describe map[string]string) {
	fmt.Fprintln(w, "| scenario | what a user sees | result | reason |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, r := range results {
		v, _ := Judge(r, known)
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", r.Scenario, describe[r.Scenario], v, strings.ReplaceAll(reason(r, known), "|", `\|`))
	}
}

// reason is why a scenario did not pass, or "" when it did.
func reason(r Result, known map[string]string) string {
	if k, ok := known[r.Scenario]; ok {
		if r.Pass {
			return "passes now: remove it from known_failures.yaml"
		}
		return k
	}
	if r.Pass {
		return ""
	}
	if r.Err != "" {
		return firstLine(r.Err)
	}
	for _, c := range r.Checks {
		if !c.Pass {
			return c.Step + " / " + c.Check + ": " + c.Detail
		}
	}
	return "no check ran"
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
