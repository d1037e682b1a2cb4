package wasm

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// Envoy reads message-valued attributes (node, metadata) through CEL:
// each path segment names a field of the message, or a key of a map,
// and the value found is serialized by its CEL type. A plugin written
// for Envoy decodes those bytes, so the host serializes alike:
//   - strings and bytes as they are, booleans as one byte;
//   - signed integers and enums as 8 little-endian bytes, unsigned ones
//     too, floating point numbers as an 8-byte IEEE double;
//   - google.protobuf.Struct, and map fields, in the header-map wire
//     form (keys and values serialized by these rules); lists (repeated
//     fields, google.protobuf.ListValue) in the same form with empty
//     values; a google.protobuf.Value as what it holds (a Struct's
//     numbers are doubles);
//   - any other message in protobuf wire form.
// A segment past a scalar or a list, or naming no field or key, is
// NOT_FOUND.

// messageProperty serializes the value at seg below m.
func messageProperty(m protoreflect.Message, seg []string) ([]byte, bool) {
	if len(seg) == 0 {
		return messageValue(m)
	}
	switch v := m.Interface().(type) {
	case *structpb.Struct:
		f, ok := v.GetFields()[seg[0]]
		if !ok {
			return nil, false
		}
		return messageProperty(f.ProtoReflect(), seg[1:])
	case *structpb.Value:
		if s := v.GetStructValue(); s != nil {
			return messageProperty(s.ProtoReflect(), seg)
		}
		return nil, false
	}
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(seg[0]))
	if fd == nil {
		return nil, false
	}
	val := m.Get(fd)
	switch {
	case fd.IsMap():
		if len(seg) == 1 {
			return mapValue(fd, val.Map())
		}
		if fd.MapKey().Kind() != protoreflect.StringKind {
			return nil, false
		}
		ev := val.Map().Get(protoreflect.ValueOfString(seg[1]).MapKey())
		if !ev.IsValid() {
			return nil, false
		}
		return fieldProperty(fd.MapValue(), ev, seg[2:])
	case fd.IsList():
		if len(seg) > 1 {
			return nil, false
		}
		return listValue(fd, val.List())
	}
	return fieldProperty(fd, val, seg[1:])
}

// fieldProperty serializes one value of field fd (a singular field, a
// map's value) or, for a message, the value at seg below it.
func fieldProperty(fd protoreflect.FieldDescriptor, v protoreflect.Value, seg []string) ([]byte, bool) {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return messageProperty(v.Message(), seg)
	}
	if len(seg) > 0 {
		return nil, false
	}
	return scalarValue(fd.Kind(), v), true
}

func scalarValue(k protoreflect.Kind, v protoreflect.Value) []byte {
	switch k {
	case protoreflect.StringKind:
		return []byte(v.String())
	case protoreflect.BytesKind:
		return v.Bytes()
	case protoreflect.BoolKind:
		return boolBytes(v.Bool())
	case protoreflect.EnumKind:
		return int64Bytes(int64(v.Enum()))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return int64Bytes(v.Int())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return binary.LittleEndian.AppendUint64(nil, v.Uint())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return doubleBytes(v.Float())
	}
	return nil
}

func doubleBytes(f float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(f)) }

// messageValue serializes a whole message: the well-known types CEL
// unwraps as their values, any other in wire form.
func messageValue(m protoreflect.Message) ([]byte, bool) {
	switch v := m.Interface().(type) {
	case *structpb.Struct:
		return structMap(v)
	case *structpb.ListValue:
		return structList(v)
	case *structpb.Value:
		return structValue(v)
	}
	// Deterministic, so that a plugin reading a message twice gets the
	// same bytes though it holds maps.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Interface())
	return b, err == nil
}

// structValue serializes a google.protobuf.Value as CEL sees it.
func structValue(v *structpb.Value) ([]byte, bool) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return []byte(k.StringValue), true
	case *structpb.Value_BoolValue:
		return boolBytes(k.BoolValue), true
	case *structpb.Value_NumberValue:
		return doubleBytes(k.NumberValue), true
	case *structpb.Value_StructValue:
		return structMap(k.StructValue)
	case *structpb.Value_ListValue:
		return structList(k.ListValue)
	case *structpb.Value_NullValue:
		return []byte{}, true
	}
	return nil, false
}

func structMap(s *structpb.Struct) ([]byte, bool) {
	pairs := make([][2]string, 0, len(s.GetFields()))
	for k, f := range s.GetFields() {
		b, ok := structValue(f)
		if !ok {
			return nil, false
		}
		pairs = append(pairs, [2]string{k, string(b)})
	}
	return encodeRawPairs(pairs), true
}

func structList(l *structpb.ListValue) ([]byte, bool) {
	pairs := make([][2]string, 0, len(l.GetValues()))
	for _, f := range l.GetValues() {
		b, ok := structValue(f)
		if !ok {
			return nil, false
		}
		pairs = append(pairs, [2]string{string(b), ""})
	}
	return encodeRawPairs(pairs), true
}

// mapValue serializes a map field as pairs of serialized keys and values.
func mapValue(fd protoreflect.FieldDescriptor, m protoreflect.Map) ([]byte, bool) {
	pairs := make([][2]string, 0, m.Len())
	ok := true
	m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		var val []byte
		val, ok = fieldProperty(fd.MapValue(), v, nil)
		pairs = append(pairs, [2]string{string(scalarValue(fd.MapKey().Kind(), k.Value())), string(val)})
		return ok
	})
	if !ok {
		return nil, false
	}
	return encodeRawPairs(pairs), true
}

// listValue serializes a repeated field as pairs with empty values.
func listValue(fd protoreflect.FieldDescriptor, l protoreflect.List) ([]byte, bool) {
	pairs := make([][2]string, 0, l.Len())
	for i := range l.Len() {
		b, ok := fieldProperty(fd, l.Get(i), nil)
		if !ok {
			return nil, false
		}
		pairs = append(pairs, [2]string{string(b), ""})
	}
	return encodeRawPairs(pairs), true
}

// encodeRawPairs serializes pairs in the map wire form without changing
// the keys' case, as attribute values keep them.
func encodeRawPairs(pairs [][2]string) []byte {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + len(p[1]) + 2
	}
	b := make([]byte, 4, size)
	binary.LittleEndian.PutUint32(b, uint32(len(pairs)))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range pairs {
		b = append(append(b, p[0]...), 0)
		b = append(append(b, p[1]...), 0)
	}
	return b
}
