package istio

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// schemaChecker walks a spec's YAML against the descriptor of its proto.
// The client-go types decode specs with unknown fields allowed, so a typo
// such as "weigth" would silently vanish; the walk reports it (and wrong
// types, unknown enum values, malformed durations) with the field path
// and the line it is on.
type schemaChecker struct {
	lineOffset int
	problems   []*pathError
	nodes      int
	// rewrote is set when a node was normalized (a Go duration to
	// seconds), so values built from the nodes before are stale.
	rewrote bool
}

func (s *schemaChecker) add(n *yaml.Node, path, format string, args ...any) {
	s.problems = append(s.problems, &pathError{path: path, line: n.Line + s.lineOffset, msg: fmt.Sprintf(format, args...)})
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func (s *schemaChecker) message(n *yaml.Node, md protoreflect.MessageDescriptor, path string, depth int) {
	n = resolve(n)
	s.nodes++
	if isNull(n) || depth > maxDepth || s.nodes > maxNodes {
		return
	}
	if wellKnown(s, n, md, path) {
		return
	}
	if n.Kind != yaml.MappingNode {
		s.add(n, path, "expected an object (%s), got %s", md.Name(), describe(n))
		return
	}
	fields := md.Fields()
	oneofSet := map[protoreflect.FullName]string{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			for _, m := range mergeSources(v) {
				s.message(m, md, path, depth+1)
			}
			continue
		}
		p := fieldPath(path, k.Value)
		if seen[k.Value] {
			s.add(k, p, "field %q is set twice", k.Value)
			continue
		}
		seen[k.Value] = true
		fd := fields.ByJSONName(k.Value)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(k.Value))
		}
		if fd == nil {
			s.add(k, p, "unknown field %q in %s%s", k.Value, md.Name(), suggestField(k.Value, fields))
			continue
		}
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() && !isNull(resolve(v)) {
			if other, dup := oneofSet[o.FullName()]; dup {
				s.add(k, p, "only one of %s may be set, %q is already set", oneofNames(o), other)
				continue
			}
			oneofSet[o.FullName()] = k.Value
		}
		s.field(v, fd, p, depth+1)
	}
}

func (s *schemaChecker) field(n *yaml.Node, fd protoreflect.FieldDescriptor, path string, depth int) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	switch {
	case fd.IsMap():
		if n.Kind != yaml.MappingNode {
			s.add(n, path, "expected a map, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			s.single(n.Content[i+1], fd.MapValue(), fieldPath(path, k.Value), depth+1)
		}
	case fd.IsList():
		if n.Kind != yaml.SequenceNode {
			s.add(n, path, "expected a list, got %s", describe(n))
			return
		}
		for i, c := range n.Content {
			s.single(c, fd, indexPath(path, i), depth+1)
		}
	default:
		s.single(n, fd, path, depth)
	}
}

func (s *schemaChecker) single(n *yaml.Node, fd protoreflect.FieldDescriptor, path string, depth int) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		s.message(n, fd.Message(), path, depth+1)
		return
	}
	if n.Kind != yaml.ScalarNode {
		s.add(n, path, "expected %s, got %s", kindName(fd), describe(n))
		return
	}
	tag := n.ShortTag()
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		if tag != "!!str" {
			s.add(n, path, "expected a string, got %s; quote it: %q", describe(n), n.Value)
		}
	case protoreflect.BoolKind:
		if tag != "!!bool" {
			s.add(n, path, "expected true or false, got %s", describe(n))
		}
	case protoreflect.EnumKind:
		s.enum(n, fd.Enum(), path)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if tag == "!!int" || tag == "!!float" {
			return
		}
		if _, err := strconv.ParseFloat(n.Value, 64); tag != "!!str" || err != nil {
			s.add(n, path, "expected a number, got %s", describe(n))
		}
	default:
		s.integer(n, fd, path)
	}
}

func (s *schemaChecker) integer(n *yaml.Node, fd protoreflect.FieldDescriptor, path string) {
	tag := n.ShortTag()
	if tag != "!!int" && tag != "!!str" {
		s.add(n, path, "expected an integer, got %s", describe(n))
		return
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil {
		s.add(n, path, "expected an integer, got %s", describe(n))
		return
	}
	lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
	switch fd.Kind() {
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		lo, hi = 0, math.MaxUint32
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		lo, hi = 0, math.MaxInt64
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	if v < lo || v > hi {
		s.add(n, path, "%d is out of range %d..%d", v, lo, hi)
	}
}

func (s *schemaChecker) enum(n *yaml.Node, ed protoreflect.EnumDescriptor, path string) {
	values := ed.Values()
	if n.ShortTag() == "!!int" {
		if i, err := strconv.Atoi(n.Value); err == nil && values.ByNumber(protoreflect.EnumNumber(i)) != nil {
			return
		}
	} else if values.ByName(protoreflect.Name(n.Value)) != nil {
		return
	}
	names := make([]string, 0, values.Len())
	for i := 0; i < values.Len(); i++ {
		names = append(names, string(values.Get(i).Name()))
	}
	s.add(n, path, "invalid value %q; valid values are %s", n.Value, strings.Join(names, ", "))
}

var durationRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]{0,9})?s$`)

// wellKnown checks the well-known types, whose JSON form is not an object
// of their fields, and reports whether md was one.
func wellKnown(s *schemaChecker, n *yaml.Node, md protoreflect.MessageDescriptor, path string) bool {
	name := string(md.FullName())
	if !strings.HasPrefix(name, "google.protobuf.") {
		return false
	}
	switch strings.TrimPrefix(name, "google.protobuf.") {
	case "Duration":
		// Istio accepts Go durations ("3m", "500ms", "1h30m"), as the
		// duration() check of its CRD schemas does; protojson wants
		// seconds, so the node is rewritten to the seconds form.
		if n.Kind == yaml.ScalarNode && !durationRE.MatchString(n.Value) {
			if d, err := time.ParseDuration(n.Value); err == nil {
				n.Value = strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
				n.Tag = "!!str"
				s.rewrote = true
			}
		}
		if n.Kind != yaml.ScalarNode || !durationRE.MatchString(n.Value) {
			s.add(n, path, "invalid duration %s: use a duration such as 5s, 0.25s, 500ms or 3m", describe(n))
		}
	case "BoolValue", "StringValue", "BytesValue", "Int32Value", "UInt32Value",
		"Int64Value", "UInt64Value", "FloatValue", "DoubleValue":
		s.single(n, md.Fields().ByName("value"), path, 0)
	case "Struct":
		if n.Kind != yaml.MappingNode {
			s.add(n, path, "expected an object, got %s", describe(n))
		}
	case "ListValue":
		if n.Kind != yaml.SequenceNode {
			s.add(n, path, "expected a list, got %s", describe(n))
		}
	case "Empty":
		return false
	}
	return true
}

func kindName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		return "a string"
	case protoreflect.BoolKind:
		return "true or false"
	case protoreflect.EnumKind:
		return "one of the values of " + string(fd.Enum().Name())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "a number"
	}
	return "an integer"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!null":
		return "null"
	}
	return n.Value
}

func oneofNames(o protoreflect.OneofDescriptor) string {
	var names []string
	for i := 0; i < o.Fields().Len(); i++ {
		names = append(names, o.Fields().Get(i).JSONName())
	}
	return strings.Join(names, ", ")
}

// suggestField names the closest field when the key looks like a typo,
// else lists the valid fields.
func suggestField(key string, fields protoreflect.FieldDescriptors) string {
	names := make([]string, 0, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		names = append(names, fields.Get(i).JSONName())
	}
	sort.Strings(names)
	return suggestName(key, names)
}

// suggestName is " (did you mean X?)" for the name of names within two
// edits of key, else "; valid fields are ..." listing names.
func suggestName(key string, names []string) string {
	best, bestDist := "", 3
	for _, name := range names {
		if d := editDistance(strings.ToLower(key), strings.ToLower(name)); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return "; valid fields are " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
