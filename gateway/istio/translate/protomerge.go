package translate

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// mergeMessage merges src into dst the way an EnvoyFilter MERGE patch
// does in istiod: as proto.Merge (set scalars replace, lists append, maps
// merge by key, messages merge field by field), except that an Any
// holding the same type on both sides, such as a filter's typed_config,
// is merged as the message inside it, and durations and timestamps are
// replaced whole. An Any of another type replaces dst's, as do Anys
// whose types are not linked in.
func mergeMessage(dst, src proto.Message) {
	mergeReflect(dst.ProtoReflect(), src.ProtoReflect())
}

func mergeReflect(dst, src protoreflect.Message) {
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			dl := dst.Mutable(fd).List()
			sl := v.List()
			for i := range sl.Len() {
				dl.Append(cloneValue(fd, sl.Get(i)))
			}
		case fd.IsMap():
			dm := dst.Mutable(fd).Map()
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				dm.Set(k, cloneValue(fd.MapValue(), mv))
				return true
			})
		case fd.Message() != nil && dst.Has(fd):
			switch fd.Message().FullName() {
			case "google.protobuf.Any":
				if !mergeAny(dst.Mutable(fd).Message(), v.Message()) {
					dst.Set(fd, cloneValue(fd, v))
				}
			case "google.protobuf.Duration", "google.protobuf.Timestamp":
				// A time is one value: merging its seconds and nanos
				// apart would add a patch's 0.25s to a 10s default.
				dst.Set(fd, cloneValue(fd, v))
			default:
				mergeReflect(dst.Mutable(fd).Message(), v.Message())
			}
		default:
			dst.Set(fd, cloneValue(fd, v))
		}
		return true
	})
}

// mergeAny merges the Any src into dst when both hold the same type and
// it decodes, and reports whether it did.
func mergeAny(dst, src protoreflect.Message) bool {
	da, ok1 := dst.Interface().(*anypb.Any)
	sa, ok2 := src.Interface().(*anypb.Any)
	if !ok1 || !ok2 || da.GetTypeUrl() != sa.GetTypeUrl() {
		return false
	}
	dm, err := da.UnmarshalNew()
	if err != nil {
		return false
	}
	sm, err := sa.UnmarshalNew()
	if err != nil {
		return false
	}
	mergeMessage(dm, sm)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(dm)
	if err != nil {
		return false
	}
	da.Value = b
	return true
}

// cloneValue copies a message value, so that dst never shares it with
// the patch (which applies to every matching resource).
func cloneValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) protoreflect.Value {
	if fd.Message() == nil {
		return v
	}
	return protoreflect.ValueOfMessage(proto.Clone(v.Message().Interface()).ProtoReflect())
}
