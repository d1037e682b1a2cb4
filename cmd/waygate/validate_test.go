package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	good := `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
`
	bad := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  gateways: [gw]
  http:
  - route:
    - destination: {host: reviews}
      weight: 60
    - destination: {host: reviews}
      weight: 30
`
	dir := t.TempDir()
	for name, content := range map[string]string{"gw.yaml": good, "routes/reviews.yaml": bad} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reviews := filepath.Join(dir, "routes", "reviews.yaml")
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{
			name: "directory with an error",
			args: []string{dir},
			code: 1,
			out: "error: " + reviews + ":12: VirtualService default/reviews: spec.http[0].route[1].weight: weights sum to 90, must be 100\n" +
				"1 error, 0 warnings in 2 resources\n",
		},
		{
			name: "clean file, info shown with -v",
			args: []string{"-v", filepath.Join(dir, "gw.yaml")},
			code: 0,
			out: "info: " + filepath.Join(dir, "gw.yaml") + ":9: Deployment default/web: not an Istio resource (apps/v1); skipped\n" +
				"0 errors, 0 warnings in 1 resource\n",
		},
		{
			name: "file alone misses the gateway of the other file",
			args: []string{reviews},
			code: 1,
			out: "error: " + reviews + ":6: VirtualService default/reviews: spec.gateways[0]: Gateway default/gw not found; define it or use \"mesh\"\n" +
				"error: " + reviews + ":12: VirtualService default/reviews: spec.http[0].route[1].weight: weights sum to 90, must be 100\n" +
				"2 errors, 0 warnings in 1 resource\n",
		},
		{name: "no arguments", args: nil, code: 2},
		{name: "missing path", args: []string{filepath.Join(dir, "nope")}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := runValidate(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if tt.out != "" && stdout.String() != tt.out {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), tt.out)
			}
		})
	}
}

// TestValidateRegistered checks the command is reachable by name.
func TestValidateRegistered(t *testing.T) {
	if _, ok := commands["validate"]; !ok {
		t.Fatal("validate is not registered")
	}
}
