package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The memory a gateway holds serving the bundled Bookinfo example, idle
// after a few requests, without the demo backends (they run in the same
// process only for the demo): its Go heap in use, and its RSS, whose
// budget is the 40 MiB of DESIGN.md's targets. With
// WAYGATE_KEEP_STARTUP_PAGES=1 the executable's pages that startup
// touched stay mapped, and the RSS shows what settleMemory gives back.
func TestRunBookinfoIdleMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	const MiB = 1 << 20
	released := startBookinfo(t, nil)
	kept := startBookinfo(t, []string{keepStartupPagesEnv + "=1"})
	for _, g := range []*bookinfoGateway{released, kept} {
		for range 10 {
			resp, err := http.Get(g.url + "/productpage")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// No backends: the route answers 503, after the whole
			// filter chain and a try of the upstream.
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("/productpage without backends: %d, want 503", resp.StatusCode)
			}
		}
	}
	// Idle again: the pages the requests mapped are given back at the
	// next quiet interval (WAYGATE_IDLE_TRIM_INTERVAL, 300ms here).
	time.Sleep(1500 * time.Millisecond)
	tests := []struct {
		name       string
		g          *bookinfoGateway
		heapBudget int64
		rssBudget  int64 // 0: not checked
		rss, heap  int64
		status     string
	}{
		{name: "default", g: released, heapBudget: 16 * MiB, rssBudget: 40 * MiB},
		{name: keepStartupPagesEnv + "=1", g: kept, heapBudget: 16 * MiB},
	}
	for i := range tests {
		tt := &tests[i]
		tt.status = procStatus(t, tt.g.pid)
		tt.rss = statusKiB(tt.status, "VmRSS") * 1024
		tt.heap = heapInuse(t, tt.g.admin)
		t.Logf("%s: RSS %.1f MiB (anonymous %.1f, file %.1f), heap in use %.1f MiB", tt.name,
			float64(tt.rss)/MiB, float64(statusKiB(tt.status, "RssAnon"))/1024, float64(statusKiB(tt.status, "RssFile"))/1024, float64(tt.heap)/MiB)
		if tt.heap > tt.heapBudget {
			t.Errorf("%s: heap in use %.1f MiB, budget %d MiB", tt.name, float64(tt.heap)/MiB, tt.heapBudget/MiB)
		}
		if tt.rssBudget > 0 && tt.rss > tt.rssBudget {
			t.Errorf("%s: RSS %.1f MiB, budget %d MiB", tt.name, float64(tt.rss)/MiB, tt.rssBudget/MiB)
		}
	}
	if saved := tests[1].rss - tests[0].rss; saved < 10*MiB {
		t.Errorf("releasing the startup pages saved %.1f MiB of RSS, want at least 10", float64(saved)/MiB)
	}
}

type bookinfoGateway struct {
	pid        int
	url, admin string
}

// startBookinfo runs `waygate run` on a copy of deploy/examples/bookinfo
// whose Gateway listens on a free port instead of 8080.
func startBookinfo(t *testing.T, env []string) *bookinfoGateway {
	t.Helper()
	dir := t.TempDir()
	port, admin := freePort(t), freePort(t)
	files, err := filepath.Glob("../../deploy/examples/bookinfo/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("bookinfo example: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "number: 8080", fmt.Sprintf("number: %d", port))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(binary, "run", "--config", dir, "--admin", fmt.Sprintf("127.0.0.1:%d", admin),
		"--access-log", "", "--log-level", "error", "--drain-time", "100ms")
	cmd.Env = append(append(os.Environ(), idleTrimEnv+"=300ms"), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("waygate run:\n%s", out.String())
		}
	})
	waitFor(t, func() bool { return strings.Contains(out.String(), "waygate is serving") })
	return &bookinfoGateway{pid: cmd.Process.Pid, url: fmt.Sprintf("http://127.0.0.1:%d", port), admin: fmt.Sprintf("127.0.0.1:%d", admin)}
}

func procStatus(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// statusKiB reads a "Name:   123 kB" line of /proc/PID/status.
func statusKiB(status, name string) int64 {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// heapInuse is runtime.MemStats.HeapInuse as the admin server's heap
// profile reports it.
func heapInuse(t *testing.T, admin string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapInuse = "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no HeapInuse in %s/debug/pprof/heap?debug=1", admin)
	return 0
}
