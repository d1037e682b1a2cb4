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

// testPlugins are the plugin modules under testdata.
var testPlugins = []string{"examples", "faults"}

// raceEnabled is set in builds with the race detector.
var raceEnabled bool

func TestMain(m *testing.M) {
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
	for i, name := range testPlugins {
		out := filepath.Join(dir, name+".wasm")
		pluginPath[name] = out
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
			cmd.Dir = filepath.Join("testdata", name)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod -buildvcs=false")
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building testdata/%s: %v\n%s", name, err, b)
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
