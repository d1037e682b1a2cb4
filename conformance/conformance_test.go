package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestScenarios runs every scenario against the real waygate binary, two
// at a time, one subtest each. A scenario listed in known_failures.yaml
// may fail (it shows as failing in the table) but must not pass; any
// other must pass. WAYGATE_BINARY names a prebuilt binary to use instead
// of building cmd/waygate.
func TestScenarios(t *testing.T) {
	scenarios, err := LoadAll("scenarios")
	if err != nil {
		t.Fatal(err)
	}
	known, err := LoadKnownFailures("known_failures.yaml", scenarios)
	if err != nil {
		t.Fatal(err)
	}
	bin := testBinary(t)
	var mu sync.Mutex
	results := map[string]Result{}
	// Two at a time whatever -parallel says: the suite shares two cores
	// with whatever else runs, and timing checks need some headroom.
	slots := make(chan struct{}, 2)
	t.Run("scenario", func(t *testing.T) {
		for _, s := range scenarios {
			t.Run(s.Name, func(t *testing.T) {
				t.Parallel()
				slots <- struct{}{}
				r := Run(context.Background(), bin, s)
				<-slots
				mu.Lock()
				results[s.Name] = r
				mu.Unlock()
				var table bytes.Buffer
				PrintResult(&table, r, known)
				t.Log(table.String())
				if v, ok := Judge(r, known); !ok {
					t.Errorf("%s: %s\ngateway log tail:\n%s", v, reason(r, known), tail(r.Log, 4000))
				}
			})
		}
	})
	ordered := make([]Result, 0, len(scenarios))
	for _, s := range scenarios {
		if r, ok := results[s.Name]; ok {
			ordered = append(ordered, r)
		}
	}
	var sum bytes.Buffer
	PrintSummary(&sum, ordered, known)
	fmt.Print(sum.String())
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// testBinary is WAYGATE_BINARY when set, else cmd/waygate built once for
// the whole test binary.
func testBinary(t *testing.T) string {
	if bin := os.Getenv("WAYGATE_BINARY"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "waygate-conformance-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin, buildErr = BuildWaygate(dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
