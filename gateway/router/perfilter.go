package router

import (
	"errors"
	"fmt"
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/waygate/waygate/filters"
)

// perFilter holds one level's compiled typed_per_filter_config, by filter
// name.
type perFilter map[string]any

const filterConfigName = "envoy.config.route.v3.FilterConfig"

// compilePerFilter builds every entry with the per-route builder the
// filter registered for its type (filters.RegisterRouteConfig). An entry
// wrapped in FilterConfig may be optional (skipped when nobody registered
// its type) or disabled (compiled to filters.Disabled).
func compilePerFilter(m map[string]*anypb.Any, field string) (perFilter, error) {
	if len(m) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(perFilter, len(m))
	for _, name := range names {
		path := fmt.Sprintf("%s[%q]", field, name)
		v, ok, err := compileFilterEntry(m[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if ok {
			out[name] = v
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// compileFilterEntry returns the compiled value, or ok=false for an
// optional entry of an unknown type.
func compileFilterEntry(a *anypb.Any) (v any, ok bool, err error) {
	if a == nil {
		return nil, false, errors.New("must be set")
	}
	optional := false
	if string(a.MessageName()) == filterConfigName {
		var fc routev3.FilterConfig
		if err := a.UnmarshalTo(&fc); err != nil {
			return nil, false, fmt.Errorf("FilterConfig: %w", err)
		}
		if fc.GetDisabled() {
			return filters.Disabled{}, true, nil
		}
		if fc.GetConfig() == nil {
			return nil, false, errors.New("config: must be set unless disabled is true")
		}
		a, optional = fc.GetConfig(), fc.GetIsOptional()
	}
	typeURL := "type.googleapis.com/" + string(a.MessageName())
	build, found := filters.LookupRouteConfig(typeURL)
	if !found {
		if optional {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("%w %s: no filter takes it as per-route config (wrap it in a FilterConfig with is_optional: true to skip it)", filters.ErrUnknown, typeURL)
	}
	msg, err := a.UnmarshalNew()
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", typeURL, err)
	}
	v, err = build(proto.Message(msg))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", typeURL, err)
	}
	return v, true, nil
}
