package hcm

import (
	"net/http"
	"strconv"

	"github.com/waygate/waygate/filters"
)

// Response code details and bodies the gateway itself produces, named as
// Envoy names them so dashboards and docs carry over.
const (
	detailsRouteNotFound   = "route_not_found"
	detailsFilterPanic     = "filter_panic"
	detailsInvalidPath     = "path_normalization_failed"
	detailsBodyTooLarge    = "request_payload_too_large"
	detailsRespTooLarge    = "response_payload_too_large"
	detailsHeadersTooLarge = "request_headers_too_large"
)

// writeLocal writes a local reply straight to the downstream, after the
// response filters had their say in the encoder.
func writeLocal(w http.ResponseWriter, r *filters.LocalReply) {
	h := w.Header()
	for k, v := range r.Header {
		h[k] = v
	}
	if r.Body != "" {
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/plain")
		}
		h.Set("Content-Length", strconv.Itoa(len(r.Body)))
	} else {
		h.Set("Content-Length", "0")
	}
	w.WriteHeader(r.Status)
	if r.Body != "" {
		_, _ = w.Write([]byte(r.Body))
	}
}
