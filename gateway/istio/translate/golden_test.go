package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/gateway/istio"
)

var update = flag.Bool("update", false, "rewrite the golden output.json files from the translator's output")

// loadCase parses a test case's input.yaml with the project's loader and
// fails on any error finding, so golden inputs stay valid Istio.
func loadCase(t *testing.T, path string) *istio.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseValid(t, path, data)
}

// parseValid parses Istio YAML with the project's loader, failing the
// test on any error finding.
func parseValid(t *testing.T, name string, data []byte) *istio.Config {
	t.Helper()
	cfg, findings := istio.ParseDocuments(name, data)
	for _, f := range findings {
		if f.Severity == istio.Error {
			t.Fatalf("input: %s", f)
		}
	}
	return cfg
}

// goldenJSON renders resources and warnings as indented JSON. protojson
// output is compacted and re-indented because its spacing is
// deliberately unstable.
func goldenJSON(t *testing.T, res *Resources, warnings []Warning) []byte {
	t.Helper()
	list := func(msgs []proto.Message) []json.RawMessage {
		out := []json.RawMessage{}
		for _, m := range msgs {
			b, err := protojson.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	var ls, rs, cs, es, ss, xs []proto.Message
	for _, m := range res.Listeners {
		ls = append(ls, m)
	}
	for _, m := range res.Routes {
		rs = append(rs, m)
	}
	for _, m := range res.Clusters {
		cs = append(cs, m)
	}
	for _, m := range res.Endpoints {
		es = append(es, m)
	}
	for _, m := range res.Secrets {
		ss = append(ss, m)
	}
	for _, m := range res.Extensions {
		xs = append(xs, m)
	}
	var exts []json.RawMessage
	if len(xs) > 0 {
		exts = list(xs)
	}
	ws := []string{}
	for _, w := range warnings {
		ws = append(ws, w.String())
	}
	doc := struct {
		Listeners []json.RawMessage `json:"listeners"`
		Routes    []json.RawMessage `json:"routes"`
		Clusters  []json.RawMessage `json:"clusters"`
		Endpoints []json.RawMessage `json:"endpoints"`
		Secrets   []json.RawMessage `json:"secrets"`
		// Extensions (ECDS) appear only in the cases that have some.
		Extensions []json.RawMessage `json:"extensions,omitempty"`
		Warnings   []string          `json:"warnings"`
	}{list(ls), list(rs), list(cs), list(es), list(ss), exts, ws}
	compact, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// TestGolden translates every testdata/<case>/input.yaml for the default
// ingress gateway proxy and compares with testdata/<case>/output.json.
// Run with -update to rewrite the outputs, then read the diff.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no golden cases")
	}
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			// Certificate paths in inputs are relative to the case directory.
			t.Chdir(dir)
			cfg := loadCase(t, "input.yaml")
			res, warnings := Translate(cfg, Proxy{ID: "router~10.0.0.1~ingress~istio-system.svc.cluster.local"})
			got := goldenJSON(t, res, warnings)
			if *update {
				if err := os.WriteFile("output.json", got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile("output.json")
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s/output.json; run go test -run TestGolden -update and review the diff", dir)
			}
		})
	}
}
