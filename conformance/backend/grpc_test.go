package backend

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestGRPC(t *testing.T) {
	s := start(t, Options{Service: "reviews", Version: "v2"})
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("echo", func(t *testing.T) {
		in, _ := structpb.NewStruct(map[string]any{"hello": "world"})
		var out structpb.Struct
		var header metadata.MD
		ctx := metadata.AppendToOutgoingContext(ctx, "end-user", "jason")
		if err := conn.Invoke(ctx, EchoMethod, in, &out, grpc.Header(&header)); err != nil {
			t.Fatal(err)
		}
		m := out.AsMap()
		if m["service"] != "reviews" || m["version"] != "v2" ||
			m["request"].(map[string]any)["hello"] != "world" ||
			m["headers"].(map[string]any)["end-user"] != "jason" {
			t.Errorf("echo answered %v", m)
		}
		if v := header.Get("x-version"); len(v) != 1 || v[0] != "v2" {
			t.Errorf("x-version metadata %v, want v2", v)
		}
	})

	t.Run("health follows /healthz", func(t *testing.T) {
		hc := healthpb.NewHealthClient(conn)
		for _, healthy := range []bool{true, false, true} {
			s.SetHealthy(healthy)
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatal(err)
			}
			want := healthpb.HealthCheckResponse_SERVING
			if !healthy {
				want = healthpb.HealthCheckResponse_NOT_SERVING
			}
			if resp.Status != want {
				t.Errorf("healthy=%v: status %v, want %v", healthy, resp.Status, want)
			}
		}
	})
}
