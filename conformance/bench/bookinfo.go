package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// BookinfoIdle measures the memory of `waygate run` serving the bundled
// Bookinfo example (deploy/examples/bookinfo, its Gateway moved from
// port 8080 to a free one) after startup and a few requests, idle.
// Variants run it without the demo backends (the gateway alone, the
// fair figure: the other proxies' measures hold no backends either),
// with them (`--demo-backends` runs Bookinfo's services in the same
// process), and with the startup pages kept mapped
// (WAYGATE_KEEP_STARTUP_PAGES=1), to show what releasing them gives.
type BookinfoIdle struct {
	// Example is the example's directory.
	Example string
	// Requests is how many GET /productpage go through before the
	// measure; Settle how long the gateway then idles.
	Requests int
	Settle   time.Duration
}

// BookinfoMemory is one variant's measure.
type BookinfoMemory struct {
	Variant string
	// Status is the answer /productpage gave (503 without backends).
	Status int
	// From /proc/PID/status, KiB.
	RSS, RSSAnon, RSSFile int64
	// HeapInuse is runtime.MemStats.HeapInuse, from the admin server.
	HeapInuse int64
}

// bookinfoVariants are the variants BookinfoIdle.Run measures, in order.
var bookinfoVariants = []struct {
	name  string
	demo  bool
	env   []string
	label string
}{
	{"gateway", false, nil, "gateway alone (no demo backends)"},
	{"gateway+demo", true, nil, "with --demo-backends (the example's services in the same process)"},
	{"gateway, pages kept", false, []string{"WAYGATE_KEEP_STARTUP_PAGES=1"}, "gateway alone, WAYGATE_KEEP_STARTUP_PAGES=1"},
}

// Run measures each variant from a fresh process, one after the other.
func (b BookinfoIdle) Run(ctx context.Context, bin, dir string) ([]BookinfoMemory, error) {
	var out []BookinfoMemory
	for i, v := range bookinfoVariants {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		m, err := b.measure(bin, filepath.Join(dir, fmt.Sprint(i)), v.demo, v.env)
		if err != nil {
			return out, fmt.Errorf("%s: %w", v.name, err)
		}
		m.Variant = v.label
		out = append(out, m)
	}
	return out, nil
}

func (b BookinfoIdle) measure(bin, dir string, demo bool, env []string) (BookinfoMemory, error) {
	var m BookinfoMemory
	port, err := freePort()
	if err != nil {
		return m, err
	}
	admin, err := freePort()
	if err != nil {
		return m, err
	}
	files, err := filepath.Glob(filepath.Join(b.Example, "*.yaml"))
	if err != nil || len(files) == 0 {
		return m, fmt.Errorf("no YAML in %s", b.Example)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return m, err
		}
		s := strings.ReplaceAll(string(data), "number: 8080", fmt.Sprintf("number: %d", port))
		if err := writeFile(filepath.Join(dir, filepath.Base(f)), s); err != nil {
			return m, err
		}
	}
	args := []string{bin, "run", "--config", dir, "--admin", fmt.Sprintf("127.0.0.1:%d", admin),
		"--access-log", "", "--log-level", "error", "--drain-time", "1s"}
	if demo {
		args = append(args, "--demo-backends")
	}
	p, err := startProcess("waygate bookinfo", env, args...)
	if err != nil {
		return m, err
	}
	defer p.stop()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := p.waitListening(addr); err != nil {
		return m, err
	}
	// Listening comes before the summary; the release of startup
	// memory follows the summary.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.out.String(), "waygate is serving") {
		if time.Now().After(deadline) {
			return m, fmt.Errorf("no summary within 20s: %s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for range b.Requests {
		resp, err := client.Get("http://" + addr + "/productpage")
		if err != nil {
			return m, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		m.Status = resp.StatusCode
	}
	client.CloseIdleConnections()
	time.Sleep(b.Settle)
	pid := []int{p.pid()}
	m.RSS, m.RSSAnon, m.RSSFile = memKiB(pid, "VmRSS"), memKiB(pid, "RssAnon"), memKiB(pid, "RssFile")
	m.HeapInuse, err = adminHeapInuse(net.JoinHostPort("127.0.0.1", fmt.Sprint(admin)))
	return m, err
}

// adminHeapInuse reads runtime.MemStats.HeapInuse from the heap profile
// the admin server serves.
func adminHeapInuse(admin string) (int64, error) {
	resp, err := http.Get("http://" + admin + "/debug/pprof/heap?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return parseHeapInuse(string(body))
}

// parseHeapInuse finds "# HeapInuse = N" in a debug=1 heap profile.
func parseHeapInuse(profile string) (int64, error) {
	for _, line := range strings.Split(profile, "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
			var n int64
			if _, err := fmt.Sscan(v, &n); err != nil {
				return 0, fmt.Errorf("HeapInuse %q: %w", v, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no HeapInuse line in the heap profile")
}

// WriteBookinfoMarkdown prints the variants' measures as a table.
func WriteBookinfoMarkdown(w io.Writer, b BookinfoIdle, ms []BookinfoMemory) {
	fmt.Fprintf(w, "### bookinfo-idle — `waygate run` on %s, idle %s after %d GET /productpage\n\n", b.Example, b.Settle, b.Requests)
	fmt.Fprintln(w, "| variant | /productpage | RSS (MiB) | anonymous | file-backed | Go heap in use (MiB) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, m := range ms {
		fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.1f |\n", m.Variant, m.Status,
			float64(m.RSS)/1024, float64(m.RSSAnon)/1024, float64(m.RSSFile)/1024, float64(m.HeapInuse)/(1<<20))
	}
	fmt.Fprintln(w)
}
