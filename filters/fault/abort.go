package fault

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/waygate/waygate/filters"
)

// abort answers the request with the configured status when the abort's
// draw says so. A header abort needs x-envoy-fault-abort-grpc-request or
// x-envoy-fault-abort-request (200-599) on the request, the gRPC one
// winning; without either there is nothing to abort with.
func (fl *filter) abort(x *filters.Exchange, c *Config) bool {
	a := c.abort
	if a == nil {
		return false
	}
	pct := a.pct
	if a.fromHeader {
		pct = pct.capped(x.Request.Header.Get(hdrAbortPercent))
	}
	if !pct.draw() {
		return false
	}
	httpStatus, grpcStatus := a.httpStatus, a.grpcStatus
	if a.fromHeader {
		httpStatus, grpcStatus = headerAbort(x.Request.Header)
	}
	if grpcStatus >= 0 {
		// As in Envoy, a gRPC abort is an HTTP 200.
		httpStatus = 200
	}
	if httpStatus == 0 || !fl.activate(c) {
		return false
	}
	fl.f.countDownstream(fl.cluster, "aborts_injected")
	fl.f.aborts.Inc()
	setMetadata(x, c)
	x.SendLocalReply(abortReply(&x.Request, httpStatus, grpcStatus, a.body))
	return true
}

func headerAbort(h http.Header) (httpStatus, grpcStatus int) {
	if g, err := strconv.ParseUint(h.Get(hdrAbortGRPC), 10, 32); err == nil {
		return 0, int(g)
	}
	s, err := strconv.ParseUint(h.Get(hdrAbort), 10, 16)
	if err != nil || s < 200 || s >= 600 {
		return 0, -1
	}
	return int(s), -1
}

// abortReply shapes the answer as Envoy's sendLocalReply does: a gRPC
// request gets a trailers-only response (HTTP 200, content-type
// application/grpc, grpc-status and grpc-message in the head, no body),
// with the configured gRPC status or the one Envoy maps the HTTP status
// to; any other request gets the HTTP status and the body.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/fault_filter
func abortReply(r *filters.Request, httpStatus, grpcStatus int, body string) filters.LocalReply {
	reply := filters.LocalReply{
		Status:  httpStatus,
		Header:  http.Header{},
		Details: "fault_filter_abort",
		Flag:    "FI",
	}
	if isGRPC(r.Header) {
		if grpcStatus < 0 {
			grpcStatus = grpcFromHTTP(httpStatus)
		}
		reply.Status = http.StatusOK
		reply.Header.Set("Content-Type", "application/grpc")
		reply.Header.Set("Grpc-Status", strconv.Itoa(grpcStatus))
		reply.Header.Set("Grpc-Message", grpcMessage(body))
		return reply
	}
	reply.Header.Set("Content-Type", "text/plain")
	reply.Body = body
	return reply
}

// isGRPC is Envoy's Grpc::Common::isGrpcRequestHeaders: content-type
// application/grpc or application/grpc+<codec>, not gRPC-Web.
func isGRPC(h http.Header) bool {
	ct := h.Get("Content-Type")
	return ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+")
}

// grpcFromHTTP is Envoy's Grpc::Utility::httpToGrpcStatus, after
// https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md.
func grpcFromHTTP(status int) int {
	switch status {
	case 400:
		return 13 // INTERNAL
	case 401:
		return 16 // UNAUTHENTICATED
	case 403:
		return 7 // PERMISSION_DENIED
	case 404:
		return 12 // UNIMPLEMENTED
	case 429, 502, 503, 504:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}

// grpcMessage percent-encodes what the gRPC spec requires in
// grpc-message: bytes outside printable ASCII, and '%'.
func grpcMessage(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
