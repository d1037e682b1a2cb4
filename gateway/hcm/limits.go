package hcm

import "net/http"

// headersTooLarge reports whether the request head exceeds the HCM's
// max_request_headers_kb, counted as Envoy counts its header map: every
// name and value, the pseudo-headers included. The listener's HTTP
// server enforces its own (larger) bound while parsing; this one is the
// connection manager's, which may be set lower per HCM.
func (c *Config) headersTooLarge(r *http.Request) bool {
	if !c.limitHeaders {
		return false
	}
	n := len(r.Method) + len(r.Host) + len(r.RequestURI)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v)
		}
		if n > c.maxRequestHeaders {
			return true
		}
	}
	return n > c.maxRequestHeaders
}
