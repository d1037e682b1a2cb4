package router

import (
	"net/http"
	"strings"
)

// responseHopByHop are the connection-specific response headers a proxy
// never forwards (RFC 9110 section 7.6.1). Transfer-Encoding is the
// downstream server's to choose.
var responseHopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

// stripResponseHopByHop removes hop-by-hop headers from an upstream
// response, including those its Connection header names.
func stripResponseHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range responseHopByHop {
		delete(h, k)
	}
}

// keepUserAgentUnset stops net/http's client from sending its own
// User-Agent when the downstream sent none: a proxy forwards the
// client's headers, it does not add a product token of its own. Both the
// HTTP/1.1 and HTTP/2 transports send no User-Agent for a present but
// empty entry.
func keepUserAgentUnset(h http.Header) {
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = nil
	}
}
