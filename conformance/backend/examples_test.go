package backend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The bundled examples are what a first-time user runs, so these tests
// hold them to the official Istio types (an unknown or misspelt field
// fails, where Istio's own decoders would silently drop it) and to the
// demo backends they point at.

const (
	exampleDir   = "../../deploy/examples/bookinfo"
	scenariosDir = "../../deploy/examples/bookinfo-scenarios"
)

// resource is one decoded document of an example file.
type resource struct {
	file string
	doc  int
	kind string
	meta metav1.ObjectMeta
	obj  any // *networking.Gateway, *networking.VirtualService, ...
}

func (r resource) key() string { return r.kind + " " + r.meta.Namespace + "/" + r.meta.Name }

// newObject returns the client-go type for kind and its spec, whose
// fields knownFields checks: the generated UnmarshalJSON of Istio specs
// drops unknown fields silently.
func newObject(kind string) (obj any, spec func() proto.Message) {
	switch kind {
	case "Gateway":
		o := new(networking.Gateway)
		return o, func() proto.Message { return &o.Spec }
	case "VirtualService":
		o := new(networking.VirtualService)
		return o, func() proto.Message { return &o.Spec }
	case "DestinationRule":
		o := new(networking.DestinationRule)
		return o, func() proto.Message { return &o.Spec }
	case "ServiceEntry":
		o := new(networking.ServiceEntry)
		return o, func() proto.Message { return &o.Spec }
	}
	return nil, nil
}

// splitDocuments splits a YAML stream at its "---" lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for line := range bytes.Lines(data) {
		if t := bytes.TrimRight(line, " \t\r\n"); string(t) == "---" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}

// decodeFile decodes every document of file and returns what decoded
// and, for the rest, errors naming the file and document.
func decodeFile(file string) ([]resource, []error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, []error{err}
	}
	var out []resource
	var errs []error
	for i, doc := range splitDocuments(data) {
		r, err := decodeDocument(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s document %d: %w", file, i+1, err))
			continue
		}
		if r.kind != "" {
			r.file, r.doc = file, i+1
			out = append(out, r)
		}
	}
	return out, errs
}

// decodeDocument decodes one YAML document; a document of comments only
// gives a resource with no kind.
func decodeDocument(doc []byte) (resource, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil || string(js) == "null" {
		return resource{}, err
	}
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       json.RawMessage   `json:"spec"`
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&head); err != nil {
		return resource{}, err
	}
	if head.APIVersion != "networking.istio.io/v1" {
		return resource{}, fmt.Errorf("apiVersion %q, want networking.istio.io/v1", head.APIVersion)
	}
	if head.Metadata.Name == "" || head.Metadata.Namespace != "default" {
		return resource{}, fmt.Errorf("metadata %+v, want a name in namespace default", head.Metadata)
	}
	obj, spec := newObject(head.Kind)
	if obj == nil {
		return resource{}, fmt.Errorf("unexpected kind %q", head.Kind)
	}
	if err := json.Unmarshal(js, obj); err != nil {
		return resource{}, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
	}
	var raw any
	if err := json.Unmarshal(head.Spec, &raw); err != nil {
		return resource{}, err
	}
	if err := knownFields(spec().ProtoReflect().Descriptor(), raw, "spec"); err != nil {
		return resource{}, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
	}
	return resource{kind: head.Kind, meta: head.Metadata, obj: obj}, nil
}

// knownFields reports the first key of v, a decoded JSON value, that is
// no field of the message md describes. It walks the message's own
// descriptor rather than decoding with protojson, which would also
// reject the Go-style durations ("3m") Istio's decoder and the Istio
// docs use.
func knownFields(md protoreflect.MessageDescriptor, v any, path string) error {
	if md.FullName().Parent() == "google.protobuf" {
		return nil // well-known types have their own JSON forms
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: want an object", path)
	}
	fields := md.Fields()
	for key, val := range obj {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		if fd == nil {
			return fmt.Errorf("%s.%s: unknown field", path, key)
		}
		p := path + "." + key
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				continue
			}
			m, _ := val.(map[string]any)
			for k, mv := range m {
				if err := knownFields(fd.MapValue().Message(), mv, p+"["+k+"]"); err != nil {
					return err
				}
			}
		case fd.Kind() != protoreflect.MessageKind:
		case fd.IsList():
			l, _ := val.([]any)
			for i, lv := range l {
				if err := knownFields(fd.Message(), lv, fmt.Sprintf("%s[%d]", p, i)); err != nil {
					return err
				}
			}
		default:
			if err := knownFields(fd.Message(), val, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML under %s: %v", dir, err)
	}
	sort.Strings(files)
	return files
}

// decodeAll decodes files, failing t on any error.
func decodeAll(t *testing.T, files ...string) []resource {
	t.Helper()
	var all []resource
	for _, f := range files {
		rs, errs := decodeFile(f)
		for _, err := range errs {
			t.Error(err)
		}
		all = append(all, rs...)
	}
	return all
}

func TestExamplesDecodeStrictly(t *testing.T) {
	for _, dir := range []string{exampleDir, scenariosDir} {
		for _, f := range yamlFiles(t, dir) {
			t.Run(filepath.Base(f), func(t *testing.T) {
				if len(decodeAll(t, f)) == 0 {
					t.Error("no resources")
				}
			})
		}
	}
}

func TestStrictDecodingCatchesTypos(t *testing.T) {
	const (
		api  = "apiVersion: networking.istio.io/v1\n"
		head = api + "metadata: {name: x, namespace: default}\n"
	)
	tests := []struct{ name, doc string }{
		{"spec field", head + "kind: VirtualService\nspec: {hosts: ['*'], htp: []}\n"},
		{"nested spec field", head + "kind: VirtualService\nspec: {http: [{route: [{destination: {hots: x}}]}]}\n"},
		{"top-level field", head + "kind: VirtualService\nspecs: {}\n"},
		{"metadata field", api + "kind: VirtualService\nmetadata: {name: x, namespace: default, label: {}}\nspec: {}\n"},
		{"enum value", head + "kind: ServiceEntry\nspec: {resolution: STATIK}\n"},
		{"duration", head + "kind: VirtualService\nspec: {http: [{timeout: half a second}]}\n"},
		{"kind", head + "kind: VirtualSevice\nspec: {}\n"},
	}
	for _, tt := range tests {
		_, err := decodeDocument([]byte(tt.doc))
		if err == nil {
			t.Errorf("%s: a typo was accepted", tt.name)
			continue
		}
		t.Logf("%s: %v", tt.name, err)
	}
}

// fqdn expands a short host the way Istio does for a resource in the
// default namespace.
func fqdn(host string) string {
	if strings.Contains(host, ".") || host == "*" {
		return host
	}
	return host + ".default.svc.cluster.local"
}

// checkSet checks that a set of resources loaded together is whole:
// no name is defined twice, every gateway, host and subset a
// VirtualService names exists, and every ServiceEntry endpoint is a demo
// backend of the same service and version.
func checkSet(t *testing.T, rs []resource) {
	t.Helper()
	keys := map[string]resource{}
	gateways := map[string]bool{}
	hosts := map[string]bool{}
	subsets := map[string][]string{} // fqdn -> subset names
	backends := map[string]Backend{}
	for _, b := range BookinfoBackends() {
		backends[b.Addr] = b
	}
	for _, r := range rs {
		if prev, dup := keys[r.key()]; dup {
			t.Errorf("%s defined in %s and %s", r.key(), prev.file, r.file)
		}
		keys[r.key()] = r
		switch o := r.obj.(type) {
		case *networking.Gateway:
			gateways[o.Name] = true
		case *networking.DestinationRule:
			for _, s := range o.Spec.GetSubsets() {
				subsets[fqdn(o.Spec.GetHost())] = append(subsets[fqdn(o.Spec.GetHost())], s.GetName())
			}
		case *networking.ServiceEntry:
			ports := map[string]bool{}
			for _, p := range o.Spec.GetPorts() {
				ports[p.GetName()] = true
			}
			for _, h := range o.Spec.GetHosts() {
				hosts[h] = true
				service := strings.TrimSuffix(h, ".default.svc.cluster.local")
				for _, ep := range o.Spec.GetEndpoints() {
					for name, port := range ep.GetPorts() {
						addr := fmt.Sprintf("%s:%d", ep.GetAddress(), port)
						b, ok := backends[addr]
						if !ports[name] || !ok || b.Service != service || b.Version != ep.GetLabels()["version"] {
							t.Errorf("%s: endpoint %s (port %q, version %q) is not the demo backend %s %s (%+v)",
								r.key(), addr, name, ep.GetLabels()["version"], service, ep.GetLabels()["version"], b)
						}
					}
				}
			}
		}
	}
	for _, r := range rs {
		vs, ok := r.obj.(*networking.VirtualService)
		if !ok {
			continue
		}
		for _, g := range vs.Spec.GetGateways() {
			if !gateways[g] {
				t.Errorf("%s: gateway %q is not defined", r.key(), g)
			}
		}
		var dests []string // host "/" subset
		for _, h := range vs.Spec.GetHttp() {
			for _, d := range h.GetRoute() {
				dests = append(dests, d.GetDestination().GetHost()+"/"+d.GetDestination().GetSubset())
			}
		}
		for _, tr := range vs.Spec.GetTcp() {
			for _, d := range tr.GetRoute() {
				dests = append(dests, d.GetDestination().GetHost()+"/"+d.GetDestination().GetSubset())
			}
		}
		for _, d := range dests {
			host, subset, _ := strings.Cut(d, "/")
			if !hosts[fqdn(host)] {
				t.Errorf("%s: destination host %q has no ServiceEntry", r.key(), host)
			}
			if subset != "" && !slices.Contains(subsets[fqdn(host)], subset) {
				t.Errorf("%s: destination %s subset %q is not defined", r.key(), host, subset)
			}
		}
	}
}

func keysOf(rs []resource) []string {
	var ks []string
	for _, r := range rs {
		ks = append(ks, r.key())
	}
	sort.Strings(ks)
	return ks
}

func TestExampleIsWhole(t *testing.T) {
	checkSet(t, decodeAll(t, yamlFiles(t, exampleDir)...))
}

// TestRouteScenariosReplaceRoutes checks the promise of the scenarios
// README: a routes-*.yaml defines exactly the resources of routes.yaml,
// so swapping the file leaves the example whole.
func TestRouteScenariosReplaceRoutes(t *testing.T) {
	routes := filepath.Join(exampleDir, "routes.yaml")
	want := keysOf(decodeAll(t, routes))
	base := slices.DeleteFunc(yamlFiles(t, exampleDir), func(f string) bool { return f == routes })
	scenarios, _ := filepath.Glob(filepath.Join(scenariosDir, "routes-*.yaml"))
	if len(scenarios) < 9 {
		t.Fatalf("found %d route scenarios, want the 9 of the seed's traffic-management tasks", len(scenarios))
	}
	for _, f := range scenarios {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rs := decodeAll(t, f)
			if got := keysOf(rs); !slices.Equal(got, want) {
				t.Errorf("defines %v, want exactly %v", got, want)
			}
			checkSet(t, append(decodeAll(t, base...), rs...))
		})
	}
}

// TestAddedScenariosFitBeside checks the scenarios that are copied
// beside the example rather than over a file of it.
func TestAddedScenariosFitBeside(t *testing.T) {
	example := decodeAll(t, yamlFiles(t, exampleDir)...)
	all, _ := filepath.Glob(filepath.Join(scenariosDir, "*.yaml"))
	for _, f := range all {
		if strings.HasPrefix(filepath.Base(f), "routes-") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			checkSet(t, append(slices.Clone(example), decodeAll(t, f)...))
		})
	}
}

// TestEveryDemoBackendIsRouted keeps BookinfoBackends and the YAML in
// step the other way: no backend is started that no file points at.
func TestEveryDemoBackendIsRouted(t *testing.T) {
	rs := decodeAll(t, append(yamlFiles(t, exampleDir), yamlFiles(t, scenariosDir)...)...)
	used := map[string]bool{}
	for _, r := range rs {
		if se, ok := r.obj.(*networking.ServiceEntry); ok {
			for _, ep := range se.Spec.GetEndpoints() {
				for _, port := range ep.GetPorts() {
					used[fmt.Sprintf("%s:%d", ep.GetAddress(), port)] = true
				}
			}
		}
	}
	for _, b := range BookinfoBackends() {
		if !used[b.Addr] {
			t.Errorf("demo backend %s %s at %s is in no ServiceEntry", b.Service, b.Version, b.Addr)
		}
	}
}
