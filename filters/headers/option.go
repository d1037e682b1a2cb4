package headers

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/accesslog"
)

// appendAction is core.v3.HeaderValueOption.HeaderAppendAction.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/base.proto#enum-config-core-v3-headervalueoption-headerappendaction
type appendAction uint8

const (
	appendIfExistsOrAdd appendAction = iota
	addIfAbsent
	overwriteIfExistsOrAdd
	overwriteIfExists
)

// Option is one compiled HeaderValueOption.
type Option struct {
	name      string // canonical; "Host" stands for :authority
	authority bool
	literal   string
	format    *accesslog.Format // nil for a literal value
	action    appendAction
	keepEmpty bool
}

// Options is a compiled list of HeaderValueOption, applied in order.
type Options []Option

// CompileOption compiles one HeaderValueOption. The deprecated append
// field, when set, wins over append_action as in Envoy: true appends,
// false overwrites.
func CompileOption(o *corev3.HeaderValueOption) (Option, error) {
	h := o.GetHeader()
	if h == nil {
		return Option{}, errors.New("header: must be set")
	}
	name := h.GetKey()
	if err := checkName(name); err != nil {
		return Option{}, fmt.Errorf("header.key: %w", err)
	}
	value := h.GetValue()
	if value == "" && len(h.GetRawValue()) > 0 {
		value = string(h.GetRawValue())
	}
	opt := Option{name: textproto.CanonicalMIMEHeaderKey(name), keepEmpty: o.GetKeepEmptyValue()}
	if strings.EqualFold(name, "host") || name == ":authority" {
		opt.authority = true
	}
	switch {
	case o.GetAppend() != nil && o.GetAppend().GetValue():
		opt.action = appendIfExistsOrAdd
	case o.GetAppend() != nil:
		opt.action = overwriteIfExistsOrAdd
	default:
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			opt.action = appendIfExistsOrAdd
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			opt.action = addIfAbsent
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			opt.action = overwriteIfExistsOrAdd
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			opt.action = overwriteIfExists
		default:
			return Option{}, fmt.Errorf("append_action: unknown value %v", o.GetAppendAction())
		}
	}
	if !strings.Contains(value, "%") {
		opt.literal = value
		return opt, nil
	}
	f, err := accesslog.FromSubstitutionFormat(&corev3.SubstitutionFormatString{
		Format:          &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: value}}},
		OmitEmptyValues: true,
	})
	if err != nil {
		return Option{}, fmt.Errorf("header.value: %w", err)
	}
	opt.format = f
	return opt, nil
}

// CompileOptions compiles a list; errors name the index under field.
func CompileOptions(os []*corev3.HeaderValueOption, field string) (Options, error) {
	if len(os) == 0 {
		return nil, nil
	}
	out := make(Options, 0, len(os))
	for i, o := range os {
		c, err := CompileOption(o)
		if err != nil {
			return nil, fmt.Errorf("%s[%d].%w", field, i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// checkName refuses what no filter may set: an empty name, and
// pseudo-headers other than :authority, which the connection manager
// owns.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case name == ":authority":
		return nil
	case strings.HasPrefix(name, ":"):
		return fmt.Errorf("%q: pseudo-headers cannot be mutated", name)
	}
	return nil
}

// value renders the option's value for x.
func (o *Option) value(x *filters.Exchange) string {
	if o.format == nil {
		return o.literal
	}
	var buf [128]byte
	return string(o.format.Append(buf[:0], x, time.Now()))
}

// Apply applies the options to h, which is x's request or response
// header (or a local reply's). authority receives a request's
// :authority changes and is nil for response headers.
func (os Options) Apply(h http.Header, authority *string, x *filters.Exchange) {
	for i := range os {
		os[i].apply(h, authority, x)
	}
}

func (o *Option) apply(h http.Header, authority *string, x *filters.Exchange) {
	v := o.value(x)
	if v == "" && !o.keepEmpty {
		return
	}
	if o.authority && authority != nil {
		if o.action == overwriteIfExists && *authority == "" || o.action == addIfAbsent && *authority != "" {
			return
		}
		*authority = v
		return
	}
	_, exists := h[o.name]
	switch o.action {
	case appendIfExistsOrAdd:
		h[o.name] = append(h[o.name], v)
	case addIfAbsent:
		if !exists {
			h[o.name] = []string{v}
		}
	case overwriteIfExistsOrAdd:
		h[o.name] = []string{v}
	case overwriteIfExists:
		if exists {
			h[o.name] = []string{v}
		}
	}
}
