package admin

import (
	"bytes"
	"encoding/json"
	"net/http"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// jsonOptions print as Envoy's admin does: proto field names, no unset
// fields. writeProto indents the result.
var jsonOptions = protojson.MarshalOptions{
	UseProtoNames: true,
	Resolver:      lenientResolver{},
}

// lenientResolver resolves Any types from the global registry and
// renders any other type as an opaque message showing only its "@type":
// one filter config from istiod that this binary does not know (istio's
// own stats or metadata-exchange protos) must not make the whole dump
// fail.
type lenientResolver struct{}

func (lenientResolver) FindMessageByName(n protoreflect.FullName) (protoreflect.MessageType, error) {
	return protoregistry.GlobalTypes.FindMessageByName(n)
}

func (lenientResolver) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
	if err == protoregistry.NotFound && opaqueType != nil {
		return opaqueType, nil
	}
	return mt, err
}

func (lenientResolver) FindExtensionByName(n protoreflect.FullName) (protoreflect.ExtensionType, error) {
	return protoregistry.GlobalTypes.FindExtensionByName(n)
}

func (lenientResolver) FindExtensionByNumber(m protoreflect.FullName, n protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	return protoregistry.GlobalTypes.FindExtensionByNumber(m, n)
}

// opaqueType is a message with no fields: an unknown Any's bytes all
// become unknown fields, which JSON does not print.
var opaqueType = func() protoreflect.MessageType {
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("waygate/admin/opaque.proto"),
		Package:     proto.String("waygate.admin"),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Opaque")}},
	}, nil)
	if err != nil {
		return nil
	}
	return dynamicpb.NewMessageType(fd.Messages().Get(0))
}()

// writeProto writes m as JSON indented with one space, as Envoy's
// pretty-printed admin output. protojson varies its whitespace on
// purpose; re-indenting with encoding/json makes the output stable, so
// that it can be diffed between two dumps.
func writeProto(w http.ResponseWriter, m proto.Message) {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		text(w, http.StatusInternalServerError, "marshaling "+string(m.ProtoReflect().Descriptor().FullName())+": "+err.Error()+"\n")
		return
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		text(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	json.Indent(&out, compact.Bytes(), "", " ")
	out.WriteByte('\n')
	w.Header().Set("Content-Type", "application/json")
	w.Write(out.Bytes())
}
