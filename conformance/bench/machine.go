package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// WriteHeader starts a results file: when, on what machine, with which
// versions and which command, so figures can be compared only with
// figures taken the same way.
// waygate says which build of Waygate was measured.
func WriteHeader(w io.Writer, command []string, waygate string) {
	fmt.Fprintf(w, "# Waygate side-by-side load results, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %d cores, %s, %s\n", runtime.NumCPU(), cpuModel(), strings.TrimSpace(run("uname", "-sr")))
	fmt.Fprintf(w, "- load average before the run: %s\n", loadAvg())
	fmt.Fprintf(w, "- waygate: %s\n", waygate)
	fmt.Fprintf(w, "- %s\n", strings.TrimSpace(run("go", "version")))
	fmt.Fprintf(w, "- nginx: %s; haproxy: %s; caddy: %s; wrk: %s; h2load: %s\n",
		version("nginx", "-v"), version("haproxy", "-v"), version("caddy", "version"), version("wrk", "-v"), version("h2load", "--version"))
	fmt.Fprintf(w, "- command: `%s`\n\n", shellJoin(command))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// LoadAvg is /proc/loadavg's 1, 5 and 15 minute figures: above the core
// count, other work shared the machine with the run.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// LoadAvg is exported for the command's closing note.
func LoadAvg() string { return loadAvg() }

func run(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	return string(out)
}

// version is the first line of a program's version output.
func version(name string, arg string) string {
	out := run(name, arg)
	if out == "" {
		return "missing"
	}
	line := firstLine(out)
	for _, p := range []string{"nginx version: ", "HAProxy version ", "h2load "} {
		line = strings.TrimPrefix(line, p)
	}
	if i := strings.Index(line, " Copyright"); i > 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// TreeBuild describes a build of the working tree: its commit, and
// whether the packages the binary is built from had uncommitted changes.
func TreeBuild() string {
	desc := "built from the working tree at " + strings.TrimSpace(run("git", "log", "-1", "--format=%h (%s)"))
	if strings.TrimSpace(run("git", "status", "--porcelain", "--", "cmd", "gateway", "filters", "go.mod", "go.sum")) != "" {
		desc += ", with uncommitted changes"
	}
	return desc
}
