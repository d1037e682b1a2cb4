package ratelimit

import (
	"net/http"
	"strings"
)

// isGRPC reports a gRPC request, which gets its rate limit answer as a
// gRPC status rather than an HTTP one, as Envoy's local replies do.
func isGRPC(h http.Header) bool {
	ct := h.Get("Content-Type")
	return ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+")
}
