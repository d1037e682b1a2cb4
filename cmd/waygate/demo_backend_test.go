package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waygate/waygate/conformance/backend"
)

// runDemoBackend starts the command in-process and returns the lines it
// printed once every backend listens, and a function that stops it and
// returns its exit code and stderr.
func runDemoBackend(t *testing.T, args []string, lines int) ([]string, func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- demoBackend(ctx, args, pw, &stderr)
		pw.Close()
	}()
	var out []string
	sc := bufio.NewScanner(pr)
	for len(out) < lines && sc.Scan() {
		out = append(out, sc.Text())
	}
	go io.Copy(io.Discard, pr)
	stop := func() (int, string) {
		cancel()
		select {
		case c := <-code:
			return c, stderr.String()
		case <-time.After(10 * time.Second):
			t.Fatal("demo-backend did not stop")
			return 0, ""
		}
	}
	t.Cleanup(func() { cancel() })
	return out, stop
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestDemoBackendOne(t *testing.T) {
	lines, stop := runDemoBackend(t, []string{"--service", "reviews", "--version", "v2", "--listen", "127.0.0.1:0"}, 1)
	if len(lines) != 1 {
		_, stderr := stop()
		t.Fatalf("printed %q; stderr %s", lines, stderr)
	}
	url, ok := strings.CutPrefix(lines[0], "reviews v2 ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("printed %q, want \"reviews v2 http://127.0.0.1:PORT\"", lines[0])
	}
	resp, err := http.Get(url + "/reviews/0")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("x-service") != "reviews" || resp.Header.Get("x-version") != "v2" || !bytes.Contains(body, []byte(`"stars": "black"`)) {
		t.Errorf("answered %v %s, want reviews v2 with black stars", resp.Header, body)
	}
	if code, stderr := stop(); code != 0 {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
	if _, err := http.Get(url + "/"); err == nil {
		t.Error("backend still answers after the command stopped")
	}
}

func TestDemoBackendTCPEcho(t *testing.T) {
	lines, stop := runDemoBackend(t, []string{"--service", "tcp-echo", "--version", "v2", "--tcp-echo", "--prefix", "two"}, 1)
	defer stop()
	addr, ok := strings.CutPrefix(strings.Join(lines, ""), "tcp-echo v2 tcp://")
	if !ok {
		t.Fatalf("printed %q", lines)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "hello\n")
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "two hello\n" {
		t.Errorf("got %q, %v; want \"two hello\\n\"", got, err)
	}
}

func TestDemoBackendBookinfo(t *testing.T) {
	set := backend.BookinfoBackends()
	lines, stop := runDemoBackend(t, []string{"--bookinfo"}, len(set))
	if len(lines) != len(set) {
		code, stderr := stop()
		if strings.Contains(stderr, "is taken") {
			t.Skipf("the fixed demo ports are in use on this machine: %s", stderr)
		}
		t.Fatalf("printed %q; exit %d, stderr %s", lines, code, stderr)
	}
	for i, b := range set {
		scheme := "http://"
		if b.TCP() {
			scheme = "tcp://"
		}
		if want := b.Service + " " + b.Version + " " + scheme + b.Addr; lines[i] != want {
			t.Errorf("line %d = %q, want %q", i, lines[i], want)
		}
		if b.TCP() {
			continue
		}
		resp, err := http.Get("http://" + b.Addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("x-service") != b.Service || resp.Header.Get("x-version") != b.Version {
			t.Errorf("%s answered as %s %s", b.Addr, resp.Header.Get("x-service"), resp.Header.Get("x-version"))
		}
	}
	if code, stderr := stop(); code != 0 {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
}

func TestDemoBackendUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no service", nil, "--service or --bookinfo is required"},
		{"bookinfo with service", []string{"--bookinfo", "--service", "x"}, "--bookinfo runs a fixed set"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
		{"stray argument", []string{"--service", "x", "extra"}, `unexpected argument "extra"`},
		{"bad fail percent", []string{"--service", "x", "--fail-percent", "300"}, "within 0-100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := demoBackend(context.Background(), tt.args, io.Discard, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, stderr.String(), tt.want)
			}
		})
	}
}
