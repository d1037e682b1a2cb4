package client_test

import (
	"context"
	"log/slog"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/waygate/waygate/gateway/xds/client"
)

// routes is a minimal data plane: it keeps what it is given and asks for
// the routes its listeners name.
type routes struct {
	sets map[string]map[string]*anypb.Any
}

func (r *routes) Apply(typeURL string, res map[string]*anypb.Any) error {
	r.sets[typeURL] = res // compile and validate here; an error NACKs
	return nil
}

func (r *routes) Names(typeURL string) []string {
	if typeURL == resourcev3.RouteType {
		return []string{"http.8080"} // the RDS names of the accepted listeners
	}
	return nil
}

// Connect a Waygate ingress gateway to istiod's plaintext port the way
// istio-ingressgateway presents itself.
func Example() {
	node := client.NewNode("", "istio-ingressgateway.istio-system", "istio-system",
		map[string]string{"istio": "ingressgateway"}, "10.0.0.7")
	c := client.New(client.Options{
		Address: "istiod.istio-system.svc:15010",
		Node:    node,
		Delta:   true,
		Log:     slog.Default(),
	}, &routes{sets: map[string]map[string]*anypb.Any{}})

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a real gateway runs until shutdown
	_ = c.Run(ctx)
	_ = c.Status()
}
