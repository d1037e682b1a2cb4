package snapshot

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// FuzzApplyExtensions feeds the ECDS path resources a control plane could
// send, well-formed or not, to a listener that runs the discovered
// filter: an update either applies or is refused; it never panics, and a
// refused one leaves the filter as it was.
func FuzzApplyExtensions(f *testing.F) {
	fault, _ := anypb.New(&faultv3.HTTPFault{Abort: &faultv3.FaultAbort{
		ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: 418},
		Percentage: &typev3.FractionalPercent{Numerator: 100},
	}})
	other, _ := anypb.New(&structpb.Struct{})
	for _, a := range []*anypb.Any{fault, other, {TypeUrl: faultType, Value: []byte{0xff, 0x01}}, nil} {
		b, _ := proto.Marshal(&corev3.TypedExtensionConfig{Name: "plugin", TypedConfig: a})
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x06, 'p', 'l', 'u', 'g', 'i', 'n', 0x12, 0x00})
	f.Fuzz(func(t *testing.T, value []byte) {
		b, port := newECDSBuilder(t)
		if err := b.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"ecds": ecdsListener(t, port, &corev3.ExtensionConfigSource{
			DefaultConfig: abortWith(t, 421), ApplyDefaultConfigWithoutWarming: true,
		})}); err != nil {
			t.Fatal(err)
		}
		before := b.Current()
		res := map[string]*anypb.Any{"plugin": {TypeUrl: resourcev3.ExtensionConfigType, Value: value}}
		if err := b.Apply(resourcev3.ExtensionConfigType, res); err != nil && b.Current() != before {
			t.Fatalf("a refused update replaced the snapshot: %v", err)
		}
	})
}
