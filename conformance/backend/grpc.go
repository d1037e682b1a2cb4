package backend

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// EchoMethod is the full name of the gRPC echo method every backend
// serves beside grpc.health.v1.Health. Its request and response are
// google.protobuf.Struct, so a client needs no generated code:
//
//	var out structpb.Struct
//	conn.Invoke(ctx, backend.EchoMethod, in, &out)
//
// The response holds service, version, the request metadata and the
// request itself under "request".
const EchoMethod = "/waygate.demo.Echo/Echo"

// newGRPCServer builds the gRPC side of a backend. It is served through
// the same port as HTTP (Server.ServeHTTP routes on content-type), so a
// gateway's gRPC routing is tested against the same upstream as the rest.
func newGRPCServer(s *Server) *grpc.Server {
	g := grpc.NewServer()
	hs := &healthService{Server: health.NewServer(), backend: s}
	healthpb.RegisterHealthServer(g, hs)
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: "waygate.demo.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Echo",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(structpb.Struct)
				if err := dec(in); err != nil {
					return nil, err
				}
				return s.echoGRPC(ctx, in)
			},
		}},
	}, nil)
	return g
}

func (s *Server) echoGRPC(ctx context.Context, in *structpb.Struct) (*structpb.Struct, error) {
	grpc.SetHeader(ctx, metadata.Pairs("x-service", s.opts.Service, "x-version", s.opts.Version))
	md, _ := metadata.FromIncomingContext(ctx)
	headers := map[string]any{}
	for k, v := range md {
		headers[k] = strings.Join(v, ", ")
	}
	return structpb.NewStruct(map[string]any{
		"service": s.opts.Service,
		"version": s.opts.Version,
		"headers": headers,
		"request": in.AsMap(),
	})
}

// healthService answers grpc.health.v1 from the same flag as /healthz,
// so HTTP and gRPC health checks of one backend always agree.
type healthService struct {
	*health.Server
	backend *Server
}

func (h *healthService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if h.backend.unhealthy.Load() {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}
