package wasm

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
)

// TestGRPCTarget reads the upstream argument of a gRPC call as Envoy
// does: a serialized GrpcService, else a cluster name.
func TestGRPCTarget(t *testing.T) {
	ser := func(gs *corev3.GrpcService) string {
		b, err := proto.Marshal(gs)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		name, in                string
		cluster, uri, authority string
		metadata                int
		wantErr                 bool
	}{
		{name: "cluster name", in: "outbound|9090||grpc.default", cluster: "outbound|9090||grpc.default", authority: "outbound|9090||grpc.default"},
		{name: "envoy_grpc", in: ser(&corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "ext", Authority: "ext.svc"}},
			InitialMetadata: []*corev3.HeaderValue{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}},
		}), cluster: "ext", authority: "ext.svc", metadata: 2},
		{name: "google_grpc", in: ser(&corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_GoogleGrpc_{GoogleGrpc: &corev3.GrpcService_GoogleGrpc{TargetUri: "dns:///ext:9000"}},
		}), uri: "dns:///ext:9000"},
		{name: "google_grpc without target", in: ser(&corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_GoogleGrpc_{GoogleGrpc: &corev3.GrpcService_GoogleGrpc{StatPrefix: "x"}},
		}), wantErr: true},
		{name: "empty", in: "", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseGRPCTarget([]byte(c.in))
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			if got.cluster != c.cluster || got.uri != c.uri || got.authority != c.authority || len(got.metadata) != c.metadata {
				t.Errorf("got %+v", got)
			}
		})
	}
}

// FuzzGRPCTarget checks that any upstream argument a plugin passes
// reads as one target, or an error, without a panic.
func FuzzGRPCTarget(f *testing.F) {
	b, _ := proto.Marshal(&corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "c"}}})
	f.Add(b)
	f.Add([]byte("cluster"))
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := parseGRPCTarget(in)
		if err != nil {
			return
		}
		if (got.cluster == "") == (got.uri == "") {
			t.Fatalf("%q: want exactly one of a cluster and a target URI, got %+v", in, got)
		}
	})
}
