package accesslog

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/filters"
)

// jsonNode is one value of a compiled JSON format: an object, a constant,
// or a format string.
type jsonNode struct {
	object   bool
	keys     []string // sorted, as Envoy's Struct-based output
	children []*jsonNode
	constant []byte    // JSON text of a non-string constant
	segs     []segment // a format string
	// typed renders a value that is exactly one operator with its JSON
	// type: numbers as numbers, unset as null.
	typed bool
}

// CompileJSON compiles a flat format dictionary, key to format string,
// with typed values as Envoy's log_format.json_format renders them.
func CompileJSON(fields map[string]string) (*Format, error) {
	m := make(map[string]any, len(fields))
	for k, v := range fields {
		m[k] = v
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, err
	}
	return CompileStruct(s, true)
}

// CompileStruct compiles a format dictionary, which may nest. With typed
// false every value renders as a string and unset ones as "-", as the
// deprecated FileAccessLog.json_format; with typed true a value made of
// one operator keeps its type (RESPONSE_CODE, DURATION, BYTES_* are
// numbers, metadata is JSON) and an unset one is null.
func CompileStruct(s *structpb.Struct, typed bool) (*Format, error) {
	n, err := compileNode(structpb.NewStructValue(s), typed, "")
	if err != nil {
		return nil, err
	}
	return &Format{json: n}, nil
}

func compileNode(v *structpb.Value, typed bool, path string) (*jsonNode, error) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		n := &jsonNode{object: true}
		for key := range k.StructValue.GetFields() {
			n.keys = append(n.keys, key)
		}
		sort.Strings(n.keys)
		for _, key := range n.keys {
			p := key
			if path != "" {
				p = path + "." + key
			}
			c, err := compileNode(k.StructValue.Fields[key], typed, p)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, c)
		}
		return n, nil
	case *structpb.Value_StringValue:
		segs, err := parse(k.StringValue)
		if err != nil {
			return nil, fmt.Errorf("access log json format %s: %w", path, err)
		}
		return &jsonNode{segs: segs, typed: typed && len(segs) == 1 && segs[0].op != nil}, nil
	default:
		b, err := json.Marshal(v.AsInterface())
		if err != nil {
			return nil, fmt.Errorf("access log json format %s: %w", path, err)
		}
		return &jsonNode{constant: b}, nil
	}
}

func (f *Format) appendJSON(dst []byte, x *filters.Exchange, end time.Time) []byte {
	dst = f.appendNode(dst, f.json, x, end)
	return append(dst, '\n')
}

func (f *Format) appendNode(dst []byte, n *jsonNode, x *filters.Exchange, end time.Time) []byte {
	switch {
	case n.constant != nil:
		return append(dst, n.constant...)
	case n.object:
		dst = append(dst, '{')
		first := true
		for i, key := range n.keys {
			mark := len(dst)
			if !first {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, key)
			dst = append(dst, ':')
			valueAt := len(dst)
			dst = f.appendNode(dst, n.children[i], x, end)
			if f.omitEmpty && isEmptyJSON(dst[valueAt:]) {
				dst = dst[:mark]
				continue
			}
			first = false
		}
		return append(dst, '}')
	}
	if n.typed {
		op := n.segs[0].op
		start := len(dst)
		var k valueKind
		dst, k = op.appendValue(dst, x, end)
		switch k {
		case unset:
			return append(dst, "null"...)
		case number, raw:
			return dst
		}
		return quoteTail(dst, start, op.maxLen)
	}
	start := len(dst)
	dst = f.appendText(dst, n.segs, x, end, "-")
	return quoteTail(dst, start, 0)
}

func isEmptyJSON(v []byte) bool {
	s := string(v)
	return s == "null" || s == `""` || s == "{}"
}

// quoteTail turns dst[start:] into a JSON string, truncated to maxLen
// bytes first when maxLen > 0. Values rarely need escaping, so the common
// case shifts the bytes by one in place instead of copying them out.
func quoteTail(dst []byte, start, maxLen int) []byte {
	if maxLen > 0 && len(dst)-start > maxLen {
		dst = dst[:start+maxLen]
	}
	plain := true
	for _, c := range dst[start:] {
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, 0)
		copy(dst[start+1:], dst[start:len(dst)-1])
		dst[start] = '"'
		return append(dst, '"')
	}
	val := string(dst[start:])
	return appendJSONString(dst[:start], val)
}

const hex = "0123456789abcdef"

// appendJSONString appends s as a JSON string, replacing invalid UTF-8 as
// encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, `\u`...)
			dst = strconv.AppendUint(dst, uint64(r), 16)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
