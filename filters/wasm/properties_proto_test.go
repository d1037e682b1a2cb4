package wasm

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestMessageProperty checks the CEL serialization of message-valued
// attributes field kind by field kind, as Envoy's node and metadata
// attributes give them.
func TestMessageProperty(t *testing.T) {
	node := &corev3.Node{
		Id:             "n1",
		ClientFeatures: []string{"f1", "f2"},
		Locality:       &corev3.Locality{Zone: "z"},
		UserAgentName:  "waygate",
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			"list": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("a"), structpb.NewBoolValue(true)}}),
			"num":  structpb.NewNumberValue(1.5),
			"null": structpb.NewNullValue(),
		}},
		DynamicParameters:  map[string]*xdscorev3.ContextParams{"k": {Params: map[string]string{"p": "v"}}},
		ListeningAddresses: []*corev3.Address{{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "10.0.0.1"}}}},
	}
	wire := func(m proto.Message) []byte { b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m); return b }
	f64 := binary.LittleEndian.AppendUint64(nil, math.Float64bits(1.5))
	tests := []struct {
		path  string
		want  []byte
		found bool
	}{
		{"", wire(node), true},
		{"id", []byte("n1"), true},
		{"user_agent_name", []byte("waygate"), true},
		{"locality", wire(node.Locality), true},
		{"locality.zone", []byte("z"), true},
		{"locality.region", []byte{}, true},
		{"client_features", encodeRawPairs([][2]string{{"f1", ""}, {"f2", ""}}), true},
		{"client_features.0", nil, false},
		{"metadata.num", f64, true},
		{"metadata.null", []byte{}, true},
		{"metadata.list", encodeRawPairs([][2]string{{"a", ""}, {"\x01", ""}}), true},
		{"metadata.list.a", nil, false},
		{"metadata.missing", nil, false},
		{"dynamic_parameters.k.params.p", []byte("v"), true},
		{"dynamic_parameters.k.params", encodeRawPairs([][2]string{{"p", "v"}}), true},
		{"dynamic_parameters.none", nil, false},
		{"listening_addresses", encodeRawPairs([][2]string{{string(wire(node.ListeningAddresses[0])), ""}}), true},
		{"no_such_field", nil, false},
		{"id.more", nil, false},
	}
	for _, c := range tests {
		var seg []string
		if c.path != "" {
			seg = strings.Split(c.path, ".")
		}
		got, found := messageProperty(node.ProtoReflect(), seg)
		if found != c.found || (found && !bytes.Equal(got, c.want)) {
			t.Errorf("node.%s = %q %v, want %q %v", c.path, got, found, c.want, c.found)
		}
	}
}

// TestMetadataProperty reads dynamic metadata by Envoy's path and by the
// shorter one, with values as a google.protobuf.Value holds them.
func TestMetadataProperty(t *testing.T) {
	md := map[string]map[string]any{
		"envoy.filters.http.jwt_authn": {"payload": map[string]any{"sub": "alice", "n": 3}},
		"ns":                           {"s": "v", "b": true, "raw": []byte("r")},
		propertiesNamespace:            {"hidden": []byte("x")},
	}
	three := binary.LittleEndian.AppendUint64(nil, math.Float64bits(3))
	tests := []struct {
		path  string
		want  []byte
		found bool
	}{
		{"filter_metadata.ns.s", []byte("v"), true},
		{"ns.s", []byte("v"), true},
		{"ns.b", []byte{1}, true},
		{"ns.raw", []byte("r"), true},
		{"envoy.filters.http.jwt_authn.payload.sub", nil, false},
		{"ns.none", nil, false},
		{"none.s", nil, false},
		{propertiesNamespace + ".hidden", nil, false},
	}
	for _, c := range tests {
		got, found := metadataProperty(md, strings.Split(c.path, "."))
		if found != c.found || (found && !bytes.Equal(got, c.want)) {
			t.Errorf("metadata.%s = %q %v, want %q %v", c.path, got, found, c.want, c.found)
		}
	}
	// A namespace holding dots is one segment of the NUL-separated path.
	got, ok := metadataProperty(md, []string{"envoy.filters.http.jwt_authn", "payload", "n"})
	if !ok || !bytes.Equal(got, three) {
		t.Errorf("jwt payload n = %q %v, want the double 3", got, ok)
	}
	got, ok = metadataProperty(md, []string{"filter_metadata", "envoy.filters.http.jwt_authn", "payload", "sub"})
	if !ok || string(got) != "alice" {
		t.Errorf("jwt payload sub = %q %v", got, ok)
	}
}

// FuzzPropertyPath reads node and metadata attributes at arbitrary
// NUL-separated paths: any path is answered or NOT_FOUND, never a panic.
func FuzzPropertyPath(f *testing.F) {
	for _, p := range []string{"", "id", "metadata\x00LABELS\x00app", "locality\x00zone", "\x00", "client_features\x00\x00",
		"filter_metadata\x00ns\x00k", "ns\x00k\x00deeper", "dynamic_parameters\x00k\x00params\x00p"} {
		f.Add(p)
	}
	md := map[string]map[string]any{"ns": {"k": map[string]any{"a": []any{1, "x"}}}}
	f.Fuzz(func(t *testing.T, path string) {
		seg := strings.Split(path, "\x00")
		messageProperty(testNode.ProtoReflect(), seg)
		metadataProperty(md, seg)
	})
}
