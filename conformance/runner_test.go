package conformance

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A scenario whose expectation is wrong fails, and the table says what
// was wanted and what the gateway answered, with the figures.
func TestRunReportsFailure(t *testing.T) {
	bin := testBinary(t)
	s, err := Load("testdata/scenarios/wrong-version")
	if err != nil {
		t.Fatal(err)
	}
	r := Run(context.Background(), bin, s)
	if r.Pass || r.Err != "" || len(r.Checks) != 2 {
		t.Fatalf("want a failed run with two checks, got pass=%v err=%q checks=%d", r.Pass, r.Err, len(r.Checks))
	}
	if c := r.Checks[0]; c.Pass || !strings.Contains(c.Detail, `response header x-version: "v1", want "v2"`) {
		t.Errorf("first check: pass=%v detail %q", c.Pass, c.Detail)
	}
	if c := r.Checks[1]; !c.Pass || !strings.Contains(strings.Join(c.Figures, "\n"), "v1: 10/10 (100.0%)") {
		t.Errorf("second check: pass=%v figures %q", c.Pass, c.Figures)
	}
	if v, ok := Judge(r, nil); v != Failed || ok {
		t.Errorf("Judge = %s, %v; want %s, false", v, ok, Failed)
	}
}

func TestJudge(t *testing.T) {
	known := map[string]string{"cb": "not built"}
	for _, tc := range []struct {
		name   string
		r      Result
		want   Verdict
		wantOK bool
	}{
		{"pass", Result{Scenario: "a", Pass: true}, Passed, true},
		{"new failure", Result{Scenario: "a"}, Failed, false},
		{"known failure", Result{Scenario: "cb"}, KnownFailing, true},
		{"known failure now passing", Result{Scenario: "cb", Pass: true}, NowPassing, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := Judge(tc.r, known)
			if v != tc.want || ok != tc.wantOK {
				t.Errorf("Judge = %s, %v; want %s, %v", v, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// Mistakes in scenario.yaml are reported with the field to fix.
func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown field", "steps: []\nbakends: []\n", "field bakends not found"},
		{"no steps", "backends: []\n", "steps: at least one step"},
		{"missing file", "steps:\n- apply: [nope.yaml]\n  checks: []\n", "steps[0].apply"},
		{"two kinds", "steps:\n- apply: [scenario.yaml]\n  checks:\n  - {request: {path: /}, tcp: {send: x}, expect: {status: 200}}\n", "exactly one of request, tcp or pause"},
		{"nothing checked", "steps:\n- apply: [scenario.yaml]\n  checks:\n  - {request: {path: /}}\n", "nothing is checked"},
		{"unknown backend", "steps:\n- apply: [scenario.yaml]\n  checks:\n  - {request: {path: /}, backendRequests: {ghost: [1, 1]}}\n", `no backend named "ghost"`},
		{"bad range", "steps:\n- apply: [scenario.yaml]\n  checks:\n  - {request: {path: /}, shares: [{match: {status: 200}, percent: [90, 10]}]}\n", "min <= max"},
		{"bad protocol", "steps:\n- apply: [scenario.yaml]\n  checks:\n  - {request: {path: /, protocol: h3}, expect: {status: 200}}\n", "want h1, h2c, https or h2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "scenario.yaml"), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// A placeholder naming no backend is an error, not an empty port.
func TestRenderUnknownBackend(t *testing.T) {
	p := &ports{backends: map[string]int{"echo-v1": 1234}, gateway: map[string]int{}, issuers: map[string]*issuer{}}
	file := filepath.Join(t.TempDir(), "x.yaml")
	os.WriteFile(file, []byte(`a: {{port "echo-v1"}}
b: {{gateway_port "http"}}
c: {{gateway_port "http"}}
`), 0o644)
	out, err := p.render(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "a: 1234") || p.gateway["http"] == 0 || strings.Count(string(out), strconv.Itoa(p.gateway["http"])) != 2 {
		t.Errorf("rendered %q with gateway ports %v", out, p.gateway)
	}
	os.WriteFile(file, []byte(`a: {{port "echo-v9"}}`), 0o644)
	if _, err := p.render(file); err == nil || !strings.Contains(err.Error(), `no backend named "echo-v9"`) {
		t.Errorf("render error %v", err)
	}
}
