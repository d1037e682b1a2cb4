package istio

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// update is one onChange call.
type update struct {
	cfg      *Config
	findings []Finding
}

func (u update) names() string {
	var names []string
	for _, k := range u.cfg.Keys() {
		names = append(names, k.Kind+"/"+k.Name)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// startWatch runs WatchDir on dir until the test ends and returns the
// channel its calls arrive on.
func startWatch(t *testing.T, dir string, debounce time.Duration) <-chan update {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	updates := make(chan update, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchDir(ctx, dir, debounce, func(c *Config, f []Finding) { updates <- update{c, f} })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return updates
}

func next(t *testing.T, updates <-chan update, within time.Duration) update {
	t.Helper()
	select {
	case u := <-updates:
		return u
	case <-time.After(within):
		t.Fatalf("no onChange within %v", within)
		return update{}
	}
}

func quiet(t *testing.T, updates <-chan update, d time.Duration) {
	t.Helper()
	select {
	case u := <-updates:
		t.Fatalf("unexpected onChange: %s", u.names())
	case <-time.After(d):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func vsYAML(name, host string) string {
	return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ` + name + `}
spec:
  hosts: [` + host + `]
  http:
  - route:
    - destination: {host: ` + host + `}
`
}

func TestWatchDirSeesEditsWithinASecond(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": vsYAML("a", "a")})
	updates := startWatch(t, dir, 0)
	if u := next(t, updates, 5*time.Second); u.names() != "VirtualService/a" {
		t.Fatalf("initial load = %q", u.names())
	}

	write(t, filepath.Join(dir, "b.yaml"), vsYAML("b", "b"))
	if u := next(t, updates, time.Second); u.names() != "VirtualService/a VirtualService/b" {
		t.Fatalf("after create = %q", u.names())
	}

	// An editor's save: write a hidden temporary file, rename it over.
	tmp := filepath.Join(dir, ".a.yaml.swp")
	write(t, tmp, vsYAML("a2", "a"))
	if err := os.Rename(tmp, filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	if u := next(t, updates, time.Second); u.names() != "VirtualService/a2 VirtualService/b" {
		t.Fatalf("after rename = %q", u.names())
	}

	// A new subdirectory with a file in it.
	write(t, filepath.Join(dir, "team/shop/c.yml"), vsYAML("c", "c"))
	if u := next(t, updates, time.Second); u.names() != "VirtualService/a2 VirtualService/b VirtualService/c" {
		t.Fatalf("after mkdir = %q", u.names())
	}
	// And a later write inside it, through the new watch.
	write(t, filepath.Join(dir, "team/shop/d.yml"), vsYAML("d", "d"))
	if u := next(t, updates, time.Second); !strings.Contains(u.names(), "VirtualService/d") {
		t.Fatalf("after write in new directory = %q", u.names())
	}

	if err := os.RemoveAll(filepath.Join(dir, "team")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	if u := next(t, updates, time.Second); u.names() != "VirtualService/a2" {
		t.Fatalf("after remove = %q", u.names())
	}
}

func TestWatchDirDebouncesBursts(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": vsYAML("a", "a")})
	// Long enough that a busy machine does not split the burst.
	const debounce = 500 * time.Millisecond
	updates := startWatch(t, dir, debounce)
	next(t, updates, 5*time.Second)

	for i := range 10 {
		write(t, filepath.Join(dir, "a.yaml"), vsYAML("a", "a")+"# edit "+string(rune('0'+i))+"\n")
		write(t, filepath.Join(dir, "b.yaml"), vsYAML("b"+string(rune('0'+i)), "b"))
		time.Sleep(10 * time.Millisecond)
	}
	u := next(t, updates, 5*time.Second)
	if u.names() != "VirtualService/a VirtualService/b9" {
		t.Errorf("after burst = %q, want the last write", u.names())
	}
	quiet(t, updates, 3*debounce)
}

func TestWatchDirKeepsOtherFilesWhenOneBreaks(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": vsYAML("a", "a"),
		"b.yaml": vsYAML("b", "b"),
	})
	updates := startWatch(t, dir, 50*time.Millisecond)
	if u := next(t, updates, 5*time.Second); u.names() != "VirtualService/a VirtualService/b" {
		t.Fatalf("initial = %q", u.names())
	}

	// b.yaml stops parsing: a stays, b's last valid version is kept, and
	// the error is reported.
	b := filepath.Join(dir, "b.yaml")
	write(t, b, "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b\n")
	u := next(t, updates, 5*time.Second)
	if u.names() != "VirtualService/a VirtualService/b" {
		t.Errorf("after breaking b = %q", u.names())
	}
	want := []string{
		"error: " + b + ":3: invalid YAML: did not find expected ',' or '}'",
		"warning: " + b + ":1: VirtualService default/b: the current version has errors; the last valid version is still served",
	}
	if got := formatFindings(u.findings); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// b.yaml now parses but is invalid: the valid version is still kept.
	write(t, b, vsYAML("b", "b")+"      weight: 30\n")
	u = next(t, updates, 5*time.Second)
	if u.names() != "VirtualService/a VirtualService/b" || !HasErrors(u.findings) {
		t.Errorf("after invalid b = %q, %v", u.names(), u.findings)
	}
	if got := u.cfg.VirtualServices[1].Spec.GetHttp()[0].GetRoute()[0].GetWeight(); got != 0 {
		t.Errorf("served weight %d, want the last valid version's 0", got)
	}

	// A new file that is broken from the start brings nothing, and takes
	// nothing away.
	write(t, filepath.Join(dir, "c.yaml"), vsYAML("c", "c")+"      weight: 30\n")
	u = next(t, updates, 5*time.Second)
	if u.names() != "VirtualService/a VirtualService/b" {
		t.Errorf("after broken c = %q", u.names())
	}

	// Deleting the broken file removes its resources for good.
	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	u = next(t, updates, 5*time.Second)
	if u.names() != "VirtualService/a" {
		t.Errorf("after removing b = %q", u.names())
	}
}

func formatFindings(findings []Finding) []string {
	var out []string
	for _, f := range findings {
		out = append(out, f.Severity.String()+": "+f.String())
	}
	return out
}

// TestWatchDirConfigMapVolume updates a directory the way the kubelet
// updates a mounted ConfigMap: new files in a fresh hidden directory, and
// the ..data symlink swapped to it by rename.
func TestWatchDirConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "..2026_01", "routes.yaml"), vsYAML("a", "a"))
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "routes.yaml"), filepath.Join(dir, "routes.yaml")); err != nil {
		t.Fatal(err)
	}
	updates := startWatch(t, dir, 50*time.Millisecond)
	if u := next(t, updates, 5*time.Second); u.names() != "VirtualService/a" {
		t.Fatalf("initial = %q (%v)", u.names(), u.findings)
	}

	write(t, filepath.Join(dir, "..2026_02", "routes.yaml"), vsYAML("b", "b"))
	if err := os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01")); err != nil {
		t.Fatal(err)
	}
	if u := next(t, updates, 5*time.Second); u.names() != "VirtualService/b" {
		t.Fatalf("after the swap = %q", u.names())
	}
}

// TestWatchDirCreatedAndReplaced starts before the directory exists, then
// sees it created, removed (keeping what was served) and created anew.
func TestWatchDirCreatedAndReplaced(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	updates := startWatch(t, dir, 50*time.Millisecond)
	u := next(t, updates, 5*time.Second)
	if u.names() != "" || len(u.findings) != 1 || !strings.Contains(u.findings[0].Message, "cannot read the configuration directory") {
		t.Fatalf("initial = %q, %v", u.names(), u.findings)
	}

	write(t, filepath.Join(dir, "a.yaml"), vsYAML("a", "a"))
	if u = next(t, updates, 5*time.Second); u.names() != "VirtualService/a" {
		t.Fatalf("after creating the directory = %q, %v", u.names(), u.findings)
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if u = next(t, updates, 5*time.Second); u.names() != "VirtualService/a" || !HasErrors(u.findings) {
		t.Fatalf("after removing the directory = %q, %v", u.names(), u.findings)
	}

	write(t, filepath.Join(dir, "b.yaml"), vsYAML("b", "b"))
	u = next(t, updates, 5*time.Second)
	for u.names() != "VirtualService/b" {
		// The directory and its file may arrive as two updates.
		u = next(t, updates, 5*time.Second)
	}
	if len(u.findings) != 0 {
		t.Errorf("findings after recreating: %v", u.findings)
	}
}
