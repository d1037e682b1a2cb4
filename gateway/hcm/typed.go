package hcm

import (
	"errors"
	"fmt"

	udpav1 "github.com/cncf/xds/go/udpa/type/v1"
	xdsv3 "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const typePrefix = "type.googleapis.com/"

// Unpack returns the type URL an extension config stands for and, when
// the Go type is known, the message itself. TypedStruct wrappers (which
// istiod uses for its own filters) are opened: their inner type URL is the
// one that counts, and their JSON value is decoded into that type when it
// is linked in.
func Unpack(a *anypb.Any) (typeURL string, msg proto.Message, err error) {
	if a == nil {
		return "", nil, fmt.Errorf("typed_config: is required")
	}
	var inner string
	var value *structpb.Struct
	switch a.GetTypeUrl() {
	case typePrefix + "udpa.type.v1.TypedStruct":
		var ts udpav1.TypedStruct
		if err := a.UnmarshalTo(&ts); err != nil {
			return a.GetTypeUrl(), nil, err
		}
		inner, value = ts.GetTypeUrl(), ts.GetValue()
	case typePrefix + "xds.type.v3.TypedStruct":
		var ts xdsv3.TypedStruct
		if err := a.UnmarshalTo(&ts); err != nil {
			return a.GetTypeUrl(), nil, err
		}
		inner, value = ts.GetTypeUrl(), ts.GetValue()
	default:
		m, err := a.UnmarshalNew()
		if err != nil {
			if errors.Is(err, protoregistry.NotFound) {
				return a.GetTypeUrl(), nil, nil
			}
			return a.GetTypeUrl(), nil, err
		}
		return a.GetTypeUrl(), m, nil
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(inner)
	if err != nil {
		return inner, nil, nil
	}
	m := mt.New().Interface()
	if value != nil {
		js, err := protojson.Marshal(value)
		if err != nil {
			return inner, nil, err
		}
		if err := protojson.Unmarshal(js, m); err != nil {
			return inner, nil, fmt.Errorf("TypedStruct value for %s: %v", inner, err)
		}
	}
	return inner, m, nil
}
