package router

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	udpatypev1 "github.com/cncf/xds/go/udpa/type/v1"
	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

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
	var ts *typedStruct
	if typeURL == xdsTypedStruct || typeURL == udpaTypedStruct {
		if ts, err = unpackTypedStruct(a); err != nil {
			return nil, false, err
		}
		typeURL = ts.typeURL
	}
	build, found := filters.LookupRouteConfig(typeURL)
	if !found {
		if optional {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("%w %s: no filter takes it as per-route config (wrap it in a FilterConfig with is_optional: true to skip it)", filters.ErrUnknown, typeURL)
	}
	var msg proto.Message
	if ts != nil {
		msg, err = ts.message()
	} else {
		msg, err = a.UnmarshalNew()
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", typeURL, err)
	}
	v, err = build(msg)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", typeURL, err)
	}
	return v, true, nil
}

const (
	xdsTypedStruct  = "type.googleapis.com/xds.type.v3.TypedStruct"
	udpaTypedStruct = "type.googleapis.com/udpa.type.v1.TypedStruct"
)

// typedStruct is a config sent as a TypedStruct (a type URL and a JSON-like
// Struct), as Istio EnvoyFilters often write per-route config.
type typedStruct struct {
	typeURL string
	value   *structpb.Struct
}

func unpackTypedStruct(a *anypb.Any) (*typedStruct, error) {
	var ts typedStruct
	if string(a.MessageName()) == "xds.type.v3.TypedStruct" {
		var m xdstypev3.TypedStruct
		if err := a.UnmarshalTo(&m); err != nil {
			return nil, fmt.Errorf("TypedStruct: %w", err)
		}
		ts = typedStruct{typeURL: m.GetTypeUrl(), value: m.GetValue()}
	} else {
		var m udpatypev1.TypedStruct
		if err := a.UnmarshalTo(&m); err != nil {
			return nil, fmt.Errorf("TypedStruct: %w", err)
		}
		ts = typedStruct{typeURL: m.GetTypeUrl(), value: m.GetValue()}
	}
	if ts.typeURL == "" {
		return nil, errors.New("TypedStruct.type_url: must not be empty")
	}
	if i := strings.LastIndexByte(ts.typeURL, '/'); i >= 0 {
		ts.typeURL = "type.googleapis.com/" + ts.typeURL[i+1:]
	}
	return &ts, nil
}

// message converts the Struct into the proto its type URL names, through
// the proto's JSON mapping.
func (ts *typedStruct) message() (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(ts.typeURL)
	if err != nil {
		return nil, err
	}
	js, err := protojson.Marshal(ts.value)
	if err != nil {
		return nil, err
	}
	m := mt.New().Interface()
	if err := protojson.Unmarshal(js, m); err != nil {
		return nil, fmt.Errorf("TypedStruct.value: %w", err)
	}
	return m, nil
}
