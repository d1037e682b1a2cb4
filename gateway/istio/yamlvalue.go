package istio

import (
	"fmt"
	"math"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// Limits that keep a hostile document (alias bombs, deep nesting) from
// exhausting memory or the stack.
// A real resource has a few thousand nodes at most.
const (
	maxNodes = 200_000
	maxDepth = 256
)

// valueBuilder turns a YAML node tree into the plain values encoding/json
// marshals, and remembers the line of every field path on the way, so
// that later checks can point at the line of the field they complain
// about.
type valueBuilder struct {
	// lineOffset is added to node lines to make them lines of the file.
	lineOffset int
	lines      map[string]int
	// paths is set to work out the field path of every node, for lines
	// and errors; without it paths stay empty, which is cheaper.
	paths bool
	nodes int
	// inAlias counts the aliases being expanded: the nodes under one are
	// the anchor's, whose lines are already recorded.
	inAlias int
}

func (b *valueBuilder) line(n *yaml.Node) int { return n.Line + b.lineOffset }

// pathError is a problem at a field path found while building values.
type pathError struct {
	path string
	line int
	msg  string
}

func (e *pathError) Error() string { return e.path + ": " + e.msg }

func (b *valueBuilder) value(n *yaml.Node, path string, depth int) (any, error) {
	b.nodes++
	if b.nodes > maxNodes || depth > maxDepth {
		return nil, &pathError{path, b.line(n), "document too large or too deeply nested"}
	}
	if b.lines != nil && b.inAlias == 0 {
		if _, seen := b.lines[path]; !seen {
			b.lines[path] = b.line(n)
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return b.value(n.Content[0], path, depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, &pathError{path, b.line(n), "unknown alias"}
		}
		b.inAlias++
		defer func() { b.inAlias-- }()
		return b.value(n.Alias, path, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			p := ""
			if b.paths {
				p = indexPath(path, i)
			}
			v, err := b.value(c, p, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		if err := b.mapping(n, path, depth, out); err != nil {
			return nil, err
		}
		return out, nil
	case yaml.ScalarNode:
		return scalar(n, path, b.line(n))
	}
	return nil, &pathError{path, b.line(n), "unsupported YAML node"}
}

// mapping fills out with the pairs of n; merge keys ("<<: *base") are
// applied first so that the mapping's own keys win, as YAML specifies.
func (b *valueBuilder) mapping(n *yaml.Node, path string, depth int, out map[string]any) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() != "!!merge" {
			continue
		}
		for _, m := range mergeSources(v) {
			if m.Kind != yaml.MappingNode {
				return &pathError{path, b.line(k), "merge key needs a mapping"}
			}
			if err := b.mapping(m, path, depth+1, out); err != nil {
				return err
			}
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return &pathError{path, b.line(k), "mapping keys must be scalars"}
		}
		p := ""
		if b.paths {
			p = fieldPath(path, k.Value)
		}
		if b.lines != nil && b.inAlias == 0 {
			b.lines[p] = b.line(k)
		}
		val, err := b.value(v, p, depth+1)
		if err != nil {
			return err
		}
		out[k.Value] = val
	}
	return nil
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		return []*yaml.Node{v.Alias}
	}
	if v.Kind == yaml.SequenceNode {
		var out []*yaml.Node
		for _, c := range v.Content {
			if c.Kind == yaml.AliasNode && c.Alias != nil {
				c = c.Alias
			}
			out = append(out, c)
		}
		return out
	}
	return []*yaml.Node{v}
}

// scalar resolves a scalar with the YAML 1.2 core schema, as Kubernetes
// tooling does for the JSON-compatible subset.
func scalar(n *yaml.Node, path string, line int) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		switch n.Value {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		var v bool
		if err := n.Decode(&v); err != nil {
			return nil, &pathError{path, line, err.Error()}
		}
		return v, nil
	case "!!int":
		if i, ok := decimalInt(n.Value); ok {
			return i, nil
		}
		var i int64
		if err := n.Decode(&i); err == nil {
			return i, nil
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return u, nil
		}
		return nil, &pathError{path, line, fmt.Sprintf("integer %s out of range", n.Value)}
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && plainFloat(n.Value) {
			return f, nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, &pathError{path, line, err.Error()}
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, &pathError{path, line, fmt.Sprintf("%s is not a number JSON can carry", n.Value)}
		}
		return f, nil
	}
	return n.Value, nil
}

// plainKey reports whether key is a name a field path shows bare:
// [A-Za-z_][A-Za-z0-9_-]*. It runs for every key of every document, so
// it is a loop rather than a regular expression.
func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// fieldPath appends a key to a path: spec.http, or metadata.labels["app.kubernetes.io/name"]
// when the key is not a plain name.
func fieldPath(path, key string) string {
	if !plainKey(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// decimalInt parses the common spelling of a YAML integer, an optional
// sign and decimal digits without a leading zero, without the
// reflection of yaml's Decode. Every other spelling (0x1F, 0o17, 017,
// which yaml reads as octal) is left to Decode.
func decimalInt(s string) (int64, bool) {
	digits := s
	if digits != "" && (digits[0] == '-' || digits[0] == '+') {
		digits = digits[1:]
	}
	if digits == "" || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return i, err == nil
}

// plainFloat reports whether s is spelled with digits, a sign, a point
// and an exponent only, the spellings on which strconv.ParseFloat and
// yaml agree.
func plainFloat(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return false
		}
	}
	return true
}
