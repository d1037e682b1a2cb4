package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// headerAdd is one compiled HeaderValueOption.
type headerAdd struct {
	key       string // canonical
	value     format
	action    corev3.HeaderValueOption_HeaderAppendAction
	keepEmpty bool
}

// headerMutation is one level's *_headers_to_add and *_headers_to_remove.
type headerMutation struct {
	remove []string // canonical
	add    []headerAdd
}

// compileHeaderMutation compiles one level's mutation; it returns nil
// when the level has none, so applying it costs nothing.
func compileHeaderMutation(add []*corev3.HeaderValueOption, remove []string, addField, removeField string) (*headerMutation, error) {
	if len(add) == 0 && len(remove) == 0 {
		return nil, nil
	}
	m := &headerMutation{}
	for i, name := range remove {
		if err := checkModifiable(name); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", removeField, i, err)
		}
		m.remove = append(m.remove, textproto.CanonicalMIMEHeaderKey(name))
	}
	for i, o := range add {
		a, err := compileHeaderAdd(o)
		if err != nil {
			return nil, fmt.Errorf("%s[%d].%w", addField, i, err)
		}
		m.add = append(m.add, a)
	}
	return m, nil
}

func compileHeaderAdd(o *corev3.HeaderValueOption) (headerAdd, error) {
	h := o.GetHeader()
	if h == nil {
		return headerAdd{}, errors.New("header: must be set")
	}
	if err := checkModifiable(h.GetKey()); err != nil {
		return headerAdd{}, fmt.Errorf("header.key: %w", err)
	}
	raw := h.GetValue()
	if raw == "" && len(h.GetRawValue()) > 0 {
		raw = string(h.GetRawValue())
	}
	v, err := compileFormat(raw)
	if err != nil {
		return headerAdd{}, fmt.Errorf("header.value: %w", err)
	}
	action := o.GetAppendAction()
	if o.GetAppend() != nil {
		// The deprecated append field maps onto append_action; setting
		// both is ambiguous and Envoy refuses it.
		if action != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			return headerAdd{}, errors.New("append: must not be set together with append_action; use append_action only")
		}
		if !o.GetAppend().GetValue() {
			action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		}
	}
	switch action {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD, corev3.HeaderValueOption_ADD_IF_ABSENT,
		corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
	default:
		return headerAdd{}, fmt.Errorf("append_action: unknown value %d", action)
	}
	return headerAdd{
		key:       textproto.CanonicalMIMEHeaderKey(h.GetKey()),
		value:     v,
		action:    action,
		keepEmpty: o.GetKeepEmptyValue(),
	}, nil
}

// checkModifiable follows Envoy's HeaderUtility::isModifiableHeader:
// pseudo-headers and Host are routing inputs, not mutation targets.
func checkModifiable(name string) error {
	switch {
	case name == "":
		return errors.New("header name must not be empty")
	case name[0] == ':':
		return fmt.Errorf("pseudo-header %q cannot be added or removed", name)
	case strings.EqualFold(name, "host"):
		return errors.New(`"host" cannot be added or removed; use host_rewrite_literal`)
	}
	return nil
}

// apply follows Envoy's HeaderParser::evaluateHeaders: removals first,
// then every value is computed against the headers as they were, then
// overwrites, then appends.
func (m *headerMutation) apply(h http.Header, c *fmtContext) {
	if m == nil {
		return
	}
	for _, k := range m.remove {
		delete(h, k)
	}
	type kv struct{ k, v string }
	var addBuf, setBuf [4]kv
	adds, sets := addBuf[:0], setBuf[:0]
	for i := range m.add {
		a := &m.add[i]
		v := a.value.render(c)
		if v == "" && !a.keepEmpty {
			continue
		}
		switch a.action {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			adds = append(adds, kv{a.key, v})
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if len(h[a.key]) == 0 {
				adds = append(adds, kv{a.key, v})
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if len(h[a.key]) > 0 {
				sets = append(sets, kv{a.key, v})
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			sets = append(sets, kv{a.key, v})
		}
	}
	for _, s := range sets {
		h[s.k] = []string{s.v}
	}
	for _, a := range adds {
		h[a.k] = append(h[a.k], a.v)
	}
}
