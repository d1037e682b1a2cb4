package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// tools maps each program the harness runs to its Debian package.
var tools = []struct{ bin, pkg string }{
	{"nginx", "nginx"},
	{"haproxy", "haproxy"},
	{"caddy", "caddy"},
	{"wrk", "wrk"},
	{"h2load", "nghttp2-client"},
}

// EnsureTools installs the programs that are missing from their Debian
// packages (apt-get, as root), after checking with apt-cache policy that
// a candidate exists. It returns, per program still missing, why: a
// scenario then skips that target or load and says so.
func EnsureTools(log io.Writer) map[string]string {
	missing := map[string]string{}
	var install []string
	for _, t := range tools {
		if _, err := exec.LookPath(t.bin); err == nil {
			continue
		}
		out, _ := exec.Command("apt-cache", "policy", t.pkg).Output()
		if !strings.Contains(string(out), "Candidate:") || strings.Contains(string(out), "Candidate: (none)") {
			missing[t.bin] = fmt.Sprintf("not installed and Debian package %s has no candidate here", t.pkg)
			continue
		}
		install = append(install, t.pkg)
	}
	if len(install) == 0 {
		return missing
	}
	if os.Geteuid() != 0 {
		for _, p := range install {
			missing[p] = "not installed; run: apt-get install -y " + strings.Join(install, " ")
		}
		return missing
	}
	fmt.Fprintf(log, "installing %s\n", strings.Join(install, " "))
	cmd := exec.Command("apt-get", append([]string{"install", "-y", "--no-install-recommends"}, install...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(log, "apt-get install: %v\n%s\n", err, lastLines(string(out), 5))
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t.bin); err != nil && missing[t.bin] == "" {
			missing[t.bin] = "apt-get install " + t.pkg + " did not provide it"
		}
	}
	return missing
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
