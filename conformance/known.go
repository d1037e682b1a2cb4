package conformance

import (
	"bytes"
	"fmt"
	"os"

	yaml "go.yaml.in/yaml/v3"
)

// KnownFailure is a scenario expected to fail because the feature behind
// it is not built yet, and why.
type KnownFailure struct {
	Scenario string `yaml:"scenario"`
	Reason   string `yaml:"reason"`
}

// LoadKnownFailures reads known_failures.yaml; every entry needs a
// reason, and must name a scenario of scenarios, so the list cannot
// silently outlive what it excuses.
func LoadKnownFailures(file string, scenarios []*Scenario) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var list []KnownFailure
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	exists := map[string]bool{}
	for _, s := range scenarios {
		exists[s.Name] = true
	}
	out := map[string]string{}
	for i, k := range list {
		switch {
		case !exists[k.Scenario]:
			return nil, fmt.Errorf("%s: entry %d: no scenario named %q", file, i, k.Scenario)
		case k.Reason == "":
			return nil, fmt.Errorf("%s: entry %d (%s): say why it fails", file, i, k.Scenario)
		}
		out[k.Scenario] = k.Reason
	}
	return out, nil
}

// Verdict is how a scenario's result reads against the known failures.
type Verdict string

const (
	Passed       Verdict = "PASS"
	Failed       Verdict = "FAIL"
	KnownFailing Verdict = "FAIL (known)"
	// NowPassing is a known failure that passed: the list must drop it.
	NowPassing Verdict = "PASS (listed as known failure)"
)

// Judge returns the verdict and whether it is acceptable: a new failure
// is not, and neither is a known failure that now passes.
func Judge(r Result, known map[string]string) (Verdict, bool) {
	_, isKnown := known[r.Scenario]
	switch {
	case r.Pass && !isKnown:
		return Passed, true
	case r.Pass:
		return NowPassing, false
	case isKnown:
		return KnownFailing, true
	default:
		return Failed, false
	}
}
