package wasm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// pluginPath holds the test plugins compiled from testdata/<name>, by
// name. TestMain builds them once, with the upstream Go SDK, for every
// test and benchmark.
var pluginPath = map[string]string{}

// testPlugins are the plugins built from the modules under testdata:
// name, module directory, and whether to build a reactor, as plugins
// must be (the command is for the test that refuses one).
var testPlugins = []struct {
	name, dir string
	reactor   bool
}{
	{"examples", "examples", true},
	{"faults", "faults", true},
	{"command", "faults", false},
}

// raceEnabled is set in builds with the race detector.
var raceEnabled bool

func TestMain(m *testing.M) {
	// Gateways of finished tests let their plugins go at once rather
	// than keep them ticking beside the next tests.
	if os.Getenv(EnvCloseDelay) == "" {
		os.Setenv(EnvCloseDelay, "-1ns")
	}
	if raceEnabled && os.Getenv(EnvCallTimeout) == "" {
		os.Setenv(EnvCallTimeout, "1s")
	}
	dir, err := os.MkdirTemp("", "waygate-wasm-plugins")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := buildPlugins(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildPlugins compiles every test plugin with standard Go for
// GOOS=wasip1 as a reactor (-buildmode=c-shared), in parallel.
func buildPlugins(dir string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(testPlugins))
	for i, p := range testPlugins {
		out := filepath.Join(dir, p.name+".wasm")
		pluginPath[p.name] = out
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"build", "-o", out}
			if p.reactor {
				args = append(args, "-buildmode=c-shared")
			}
			cmd := exec.Command("go", append(args, ".")...)
			cmd.Dir = filepath.Join("testdata", p.dir)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod -buildvcs=false")
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building testdata/%s: %v\n%s", p.dir, err, b)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
