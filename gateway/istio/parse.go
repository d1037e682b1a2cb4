package istio

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultNamespace is the namespace of a resource that does not name
// one, as kubectl apply would place it.
const DefaultNamespace = "default"

// ParseDocuments decodes the Istio resources of one file holding one or
// more YAML (or JSON) documents. It never stops at the first problem:
// every document is decoded on its own, and each problem becomes a
// Finding. Resources whose spec could be decoded are in the Config even
// when they have Error findings; Config.WithoutInvalid removes those.
func ParseDocuments(file string, data []byte) (*Config, []Finding) {
	p := &parser{file: file, cfg: newConfig()}
	index := 0
	for _, doc := range splitDocuments(data) {
		var root yaml.Node
		if err := unmarshalYAML(doc.text, &root); err != nil {
			index++
			line, msg := syntaxError(err, doc)
			p.report(Finding{Severity: Error, Line: line, Message: msg})
			continue
		}
		if len(root.Content) == 0 || isNull(root.Content[0]) {
			continue // only comments or blanks, or a trailing "---"
		}
		index++
		p.object(root.Content[0], index, doc.firstLine-1, "", docSource{text: doc.text})
	}
	return p.cfg, p.findings
}

func newConfig() *Config {
	return &Config{Origins: map[Key]Origin{}, lines: map[Key]*fieldLines{}}
}

// unmarshalYAML parses one document, turning a parser panic on hostile
// input into an error: one bad document must not take the process down.
func unmarshalYAML(text []byte, root *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return yaml.Unmarshal(text, root)
}

type parser struct {
	file     string
	cfg      *Config
	findings []Finding
}

func (p *parser) report(f Finding) {
	f.File = p.file
	p.findings = append(p.findings, f)
}

// metadataFields are the fields of Kubernetes ObjectMeta, by JSON name.
var metadataFields = map[string]bool{
	"name": true, "namespace": true, "labels": true, "annotations": true,
	"generateName": true, "uid": true, "resourceVersion": true, "generation": true,
	"creationTimestamp": true, "deletionTimestamp": true, "deletionGracePeriodSeconds": true,
	"ownerReferences": true, "finalizers": true, "managedFields": true, "selfLink": true,
}

// topLevelFields are the fields a Kubernetes object may have.
var topLevelFields = []string{"apiVersion", "kind", "metadata", "spec", "status"}

// object decodes one resource (or a List of them) from the node n of
// document index; offset turns node lines into file lines; at is the
// path of n inside its document ("" or items[3]).
func (p *parser) object(n *yaml.Node, index, offset int, at string, src docSource) {
	n = resolve(n)
	line := n.Line + offset
	if n.Kind != yaml.MappingNode {
		p.report(Finding{Severity: Error, Line: line, Path: at, Message: "expected a Kubernetes object (a mapping with apiVersion and kind), got " + describe(n)})
		return
	}
	v, err := (&valueBuilder{lineOffset: offset}).value(n, "", 0)
	if err != nil {
		// Again with field paths, for the error's.
		if _, perr := (&valueBuilder{lineOffset: offset, paths: true}).value(n, "", 0); perr != nil {
			err = perr
		}
		var pe *pathError
		if !errors.As(err, &pe) {
			pe = &pathError{line: line, msg: err.Error()}
		}
		p.report(Finding{Severity: Error, Line: pe.line, Path: joinPath(at, pe.path), Message: pe.msg})
		return
	}
	lines := newFieldLines(src, offset)
	m := v.(map[string]any)
	apiVersion, _ := m["apiVersion"].(string)
	kindName, _ := m["kind"].(string)
	if apiVersion == "" || kindName == "" {
		p.report(Finding{Severity: Error, Line: line, Path: at, Message: "missing apiVersion or kind: every document must name its resource type"})
		return
	}
	if kindName == "List" || strings.HasSuffix(kindName, "List") && mappingValue(n, "items") != nil {
		p.list(n, index, offset, at, src)
		return
	}
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		group, version = "", apiVersion
	}
	meta, metaErr := objectMeta(m["metadata"])
	key := Key{Kind: kindName, Namespace: meta.Namespace, Name: meta.Name}
	if key.Namespace == "" {
		key.Namespace = DefaultNamespace
	}
	k, known := kinds[group+"/"+kindName]
	switch {
	case !known && unsupportedKinds[group+"/"+kindName]:
		p.report(Finding{Severity: Warning, Line: line, Resource: key, Path: at, Message: "Waygate does not act on " + kindName + " resources; skipped"})
		return
	case !known && istioGroup(group):
		names := knownKindNames(group)
		sort.Strings(names)
		msg := fmt.Sprintf("unknown kind %q in API group %s", kindName, group)
		if len(names) > 0 {
			msg += "; known kinds are " + strings.Join(names, ", ")
		}
		p.report(Finding{Severity: Error, Line: lineOr(lines.get(), "kind", line), Resource: key, Path: joinPath(at, "kind"), Message: msg})
		return
	case !known && group == WaygateGroup:
		p.waygateObject(m, lines, key, meta, metaErr, version, line, at, index)
		return
	case !known:
		p.report(Finding{Severity: Info, Line: line, Resource: key, Path: at, Message: "not an Istio resource (" + apiVersion + "); skipped"})
		return
	case !slices.Contains(k.versions, version):
		p.report(Finding{Severity: Error, Line: lineOr(lines.get(), "apiVersion", line), Resource: key, Path: joinPath(at, "apiVersion"),
			Message: fmt.Sprintf("%s is not served for %s; use one of %s/%s", apiVersion, kindName, group, strings.Join(k.versions, ", "+group+"/"))})
		return
	}
	if metaErr != nil {
		p.report(Finding{Severity: Error, Line: lineOr(lines.get(), "metadata", line), Resource: key, Path: joinPath(at, "metadata"), Message: metaErr.Error()})
		return
	}
	if meta.Name == "" {
		p.report(Finding{Severity: Error, Line: lineOr(lines.get(), "metadata", line), Resource: key, Path: joinPath(at, "metadata.name"), Message: "required: every resource needs a name"})
		return
	}
	if prev, dup := p.cfg.Origins[key]; dup {
		p.report(Finding{Severity: Error, Line: line, Resource: key, Message: fmt.Sprintf("defined twice in this file: also at line %d; this one is ignored", prev.Line)})
		return
	}
	meta.Namespace = key.Namespace
	origin := Origin{File: p.file, Document: index, Line: line}

	invalid := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		f := resolve(n.Content[i])
		if !slices.Contains(topLevelFields, f.Value) {
			invalid = true
			p.report(Finding{Severity: Error, Line: f.Line + offset, Resource: key, Path: fieldPath("", f.Value),
				Message: fmt.Sprintf("unknown field %q; valid fields are %s", f.Value, strings.Join(topLevelFields, ", "))})
		}
	}
	if mn := mappingValue(n, "metadata"); mn != nil {
		mn = resolve(mn)
		for i := 0; i+1 < len(mn.Content); i += 2 {
			f := resolve(mn.Content[i])
			if !metadataFields[f.Value] {
				invalid = true
				p.report(Finding{Severity: Error, Line: f.Line + offset, Resource: key, Path: fieldPath("metadata", f.Value),
					Message: fmt.Sprintf("unknown field %q in metadata%s", f.Value, suggestName(f.Value, sortedKeys(metadataFields)))})
			}
		}
	}
	spec, add := k.build(meta)
	if specNode := mappingValue(n, "spec"); specNode != nil {
		sc := &schemaChecker{lineOffset: offset}
		sc.message(specNode, spec.ProtoReflect().Descriptor(), "spec", 0)
		for _, pe := range sc.problems {
			invalid = true
			p.report(Finding{Severity: Error, Line: pe.line, Resource: key, Path: pe.path, Message: pe.msg})
		}
		// The spec is encoded from the checked node, which carries the
		// checker's normalizations (durations in seconds): the values
		// built above serve unless the checker rewrote a node.
		specValue, err := m["spec"], error(nil)
		if sc.rewrote {
			specValue, err = (&valueBuilder{lineOffset: offset, paths: true}).value(specNode, "spec", 0)
		}
		var raw []byte
		if err == nil {
			raw, err = json.Marshal(specValue)
		}
		if err == nil {
			err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(raw, spec)
		}
		if err != nil {
			if !invalid {
				p.report(Finding{Severity: Error, Line: lineOr(lines.get(), "spec", line), Resource: key, Path: "spec", Message: err.Error()})
			}
			return
		}
	}
	add(p.cfg)
	p.cfg.Origins[key] = origin
	p.cfg.lines[key] = lines
}

// list decodes the items of a kind: List document, as kubectl get -o yaml
// writes them.
func (p *parser) list(n *yaml.Node, index, offset int, at string, src docSource) {
	items := mappingValue(n, "items")
	if items == nil {
		return
	}
	items = resolve(items)
	if items.Kind != yaml.SequenceNode {
		p.report(Finding{Severity: Error, Line: items.Line + offset, Path: joinPath(at, "items"), Message: "expected a list, got " + describe(items)})
		return
	}
	for i, item := range items.Content {
		p.object(item, index, offset, indexPath(joinPath(at, "items"), i), src.item(i))
	}
}

func objectMeta(v any) (metav1.ObjectMeta, error) {
	var meta metav1.ObjectMeta
	if v == nil {
		return meta, nil
	}
	raw, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(raw, &meta)
	}
	if err != nil {
		return metav1.ObjectMeta{}, fmt.Errorf("invalid metadata: %v", err)
	}
	return meta, nil
}

// mappingValue returns the value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if resolve(n.Content[i]).Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func joinPath(at, path string) string {
	switch {
	case at == "":
		return path
	case path == "":
		return at
	case strings.HasPrefix(path, "["):
		return at + path
	}
	return at + "." + path
}

func lineOr(lines map[string]int, path string, def int) int {
	if l, ok := lines[path]; ok {
		return l
	}
	return def
}
