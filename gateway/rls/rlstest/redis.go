// Package rlstest starts the real servers the global rate limit tests
// need: a redis-server on a free loopback port.
package rlstest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waygate/waygate/conformance/backend"
)

// StartRedis runs redis-server on a free loopback port, without
// persistence, for the life of the test, and returns its address. When
// redis-server is not installed the test is skipped, except in CI (CI is
// "true"), where .ci/setup.d/redis.sh installs it and its absence is a
// failure.
func StartRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "true" {
			t.Skip("redis-server not installed (apt-get install redis-server)")
		}
		t.Fatal("redis-server not installed; .ci/setup.d/redis.sh installs it")
	}
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		cmd := exec.Command(bin, "--save", "", "--appendonly", "no", "--port", strconv.Itoa(port), "--bind", "127.0.0.1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			sent := false
			for sc.Scan() {
				line := sc.Text()
				if !sent && strings.Contains(line, "Ready to accept connections") {
					ready <- true
					sent = true
				}
			}
			if !sent {
				ready <- false
			}
		}()
		ok := false
		select {
		case ok = <-ready:
		case <-time.After(10 * time.Second):
		}
		if ok {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
			return fmt.Sprintf("127.0.0.1:%d", port)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if attempt == 2 {
			t.Fatal("redis-server did not start")
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := backend.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
