package istio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles lays out files (path relative to dir → content) in a new
// temporary directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const reviewsVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
`

func TestLoadDirDuplicateAcrossFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml":        reviewsVS,
		"sub/b.yml":     reviewsVS,
		"notes.txt":     reviewsVS,
		".hidden.yaml":  reviewsVS,
		"c.json":        `{"apiVersion":"networking.istio.io/v1","kind":"Gateway","metadata":{"name":"gw","namespace":"edge"},"spec":{"servers":[{"port":{"number":80,"name":"http","protocol":"HTTP"},"hosts":["*"]}]}}`,
		".git/x.yaml":   reviewsVS,
		"sub/empty.yml": "# nothing here\n",
	})
	cfg, findings, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.VirtualServices) != 1 || len(cfg.Gateways) != 1 {
		t.Fatalf("got %d VirtualServices, %d Gateways; want 1, 1", len(cfg.VirtualServices), len(cfg.Gateways))
	}
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "sub/b.yml")
	key := Key{"VirtualService", "default", "reviews"}
	if got := cfg.Origins[key]; got.File != a || got.Line != 1 || got.Document != 1 {
		t.Errorf("origin = %+v, want %s line 1", got, a)
	}
	if len(findings) != 1 {
		t.Fatalf("findings = %v, want one duplicate", findings)
	}
	f := findings[0]
	want := b + ":1: VirtualService default/reviews: duplicate of the resource defined in " + a + ":1; this one is ignored"
	if f.Severity != Error || f.String() != want {
		t.Errorf("finding = %s %q\nwant error %q", f.Severity, f, want)
	}
	// The duplicate's finding must not take the first definition away.
	if got := cfg.WithoutInvalid(findings); len(got.VirtualServices) != 1 {
		t.Errorf("WithoutInvalid dropped the first definition")
	}
}

func TestLoadDirMissing(t *testing.T) {
	if _, _, err := LoadDir(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("err = %v, want one naming the directory", err)
	}
}
