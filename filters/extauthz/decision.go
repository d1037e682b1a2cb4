package extauthz

import "net/http"

// verdict is the outcome of one check.
type verdict uint8

const (
	allowed verdict = iota
	denied
	failed
)

// decision is what the authorization service answered, in the terms the
// filter applies it: headers for the upstream request, headers for the
// client, and for a denial the response to send.
type decision struct {
	verdict verdict
	err     error // for failed

	status int
	body   []byte
	// deniedHeaders go on the local reply of a denial.
	deniedHeaders http.Header

	// Mutations of the upstream request when allowed.
	setHeaders, appendHeaders http.Header
	removeHeaders             []string
	// clientHeaders go on the downstream response when allowed.
	clientHeaders http.Header
	// metadata is dynamic metadata for envoy.filters.http.ext_authz.
	metadata map[string]any
}

func addHeader(h *http.Header, k, v string) {
	if *h == nil {
		*h = http.Header{}
	}
	h.Add(k, v)
}

func setHeader(h *http.Header, k, v string) {
	if *h == nil {
		*h = http.Header{}
	}
	h.Set(k, v)
}
