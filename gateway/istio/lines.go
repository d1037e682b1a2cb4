package istio

import (
	"slices"
	"sync"

	yaml "go.yaml.in/yaml/v3"
)

// fieldLines finds, for one resource, the line of the file each field
// path (spec.http[0].route) is on, so that findings point at the field.
//
// Recording every path while parsing cost a path string and a map entry
// per YAML node: a fifth of the parse of a 10,000-route VirtualService
// and megabytes kept for the life of the configuration. The lines are
// needed only when there is something to report, so a resource keeps
// the text of its document instead, and the map is built from it once,
// on first use.
type fieldLines struct {
	once   sync.Once
	text   []byte // the document, until the map is built
	offset int    // added to the document's lines to make the file's
	items  []int  // the resource is items[i] of a List, for each List level
	m      map[string]int
}

// docSource is where in a document the resource being parsed is.
type docSource struct {
	text  []byte
	items []int
}

func (s docSource) item(i int) docSource {
	return docSource{text: s.text, items: append(slices.Clone(s.items), i)}
}

func newFieldLines(src docSource, offset int) *fieldLines {
	return &fieldLines{text: src.text, offset: offset, items: src.items}
}

// get returns the map of field paths to lines; nil for a resource that
// did not come from a file.
func (l *fieldLines) get() map[string]int {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		text := l.text
		l.text = nil
		var root yaml.Node
		if unmarshalYAML(text, &root) != nil || len(root.Content) == 0 {
			return
		}
		n := resolve(root.Content[0])
		for _, i := range l.items {
			items := mappingValue(n, "items")
			if items == nil {
				return
			}
			if items = resolve(items); i >= len(items.Content) {
				return
			}
			n = resolve(items.Content[i])
		}
		b := &valueBuilder{lineOffset: l.offset, lines: map[string]int{}, paths: true}
		_, _ = b.value(n, "", 0)
		l.m = b.lines
	})
	return l.m
}
