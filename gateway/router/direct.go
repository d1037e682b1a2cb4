package router

import (
	"errors"
	"fmt"
	"os"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// DefaultMaxDirectResponseBody is Envoy's limit on direct response bodies
// when the route configuration sets none.
const DefaultMaxDirectResponseBody = 4096

// DirectResponse is a compiled DirectResponseAction. For 201 and 3xx the
// router also sends Route.Location, as Envoy does.
type DirectResponse struct {
	Status int
	Body   string
}

func compileDirect(a *routev3.DirectResponseAction, maxBody uint32) (*DirectResponse, error) {
	if a.GetStatus() < 200 || a.GetStatus() > 599 {
		return nil, fmt.Errorf("direct_response.status: %d is not within [200, 599]", a.GetStatus())
	}
	if a.GetBodyFormat() != nil {
		return nil, errors.New("direct_response.body_format: formatted bodies are not supported; use body")
	}
	body, err := readDataSource(a.GetBody())
	if err != nil {
		return nil, fmt.Errorf("direct_response.body: %w", err)
	}
	if uint64(len(body)) > uint64(maxBody) {
		return nil, fmt.Errorf("direct_response.body: %d bytes exceed max_direct_response_body_size_bytes %d", len(body), maxBody)
	}
	return &DirectResponse{Status: int(a.GetStatus()), Body: body}, nil
}

// readDataSource reads a DataSource once, at compile time: a file is not
// re-read per request.
func readDataSource(d *corev3.DataSource) (string, error) {
	if d == nil {
		return "", nil
	}
	switch s := d.GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		return s.InlineString, nil
	case *corev3.DataSource_InlineBytes:
		return string(s.InlineBytes), nil
	case *corev3.DataSource_Filename:
		b, err := os.ReadFile(s.Filename)
		if err != nil {
			return "", fmt.Errorf("filename: %w", err)
		}
		return string(b), nil
	case *corev3.DataSource_EnvironmentVariable:
		v, ok := os.LookupEnv(s.EnvironmentVariable)
		if !ok {
			return "", fmt.Errorf("environment_variable: %s is not set", s.EnvironmentVariable)
		}
		return v, nil
	}
	return "", nil
}
