package filters

// Status is a filter's answer at each phase, after Envoy's
// FilterHeadersStatus / FilterDataStatus.
type Status uint8

const (
	// Continue passes the phase on to the next filter.
	Continue Status = iota
	// StopAndBuffer is valid in body phases only: the chain holds this chunk
	// and calls the filter again with everything buffered so far when more
	// data arrives, and with endStream=true once the body is complete.
	// Buffering is bounded by the listener's buffer limit; beyond it the
	// chain answers 413 (request) or 500 (response) as Envoy does.
	StopAndBuffer
	// Stop ends the exchange. The filter must have called
	// Exchange.SendLocalReply (or the downstream is reset when no reply was
	// set).
	Stop
)

func (s Status) String() string {
	switch s {
	case Continue:
		return "Continue"
	case StopAndBuffer:
		return "StopAndBuffer"
	case Stop:
		return "Stop"
	}
	return "Status(?)"
}

// RequestHeadersFilter sees the request headers. endStream is true when
// the request has no body.
type RequestHeadersFilter interface {
	OnRequestHeaders(x *Exchange, endStream bool) Status
}

// RequestBodyFilter sees the request body, chunk by chunk. Implementing it
// makes the chain route the request body through the filter; a filter that
// only needs headers should not implement it.
type RequestBodyFilter interface {
	OnRequestBody(x *Exchange, body *Buffer, endStream bool) Status
}

// ResponseHeadersFilter sees the response headers, from the upstream or
// from a local reply.
type ResponseHeadersFilter interface {
	OnResponseHeaders(x *Exchange, endStream bool) Status
}

// ResponseBodyFilter sees the response body, chunk by chunk.
type ResponseBodyFilter interface {
	OnResponseBody(x *Exchange, body *Buffer, endStream bool) Status
}

// RequestTrailersFilter sees the request trailers (x.Request.Trailer,
// which it may change before they go upstream), after the request body
// filters saw the end of the body. It runs only for a request that has
// trailers.
type RequestTrailersFilter interface {
	OnRequestTrailers(x *Exchange) Status
}

// ResponseTrailersFilter sees the response trailers (x.Response.Trailer,
// which it may change before they go downstream), after the response
// body filters saw the end of the body, in reverse chain order as the
// other response phases. It runs only for a response that has trailers.
// The headers are gone by then: Stop resets the stream.
type ResponseTrailersFilter interface {
	OnResponseTrailers(x *Exchange) Status
}

// DoneFilter is called once when the exchange is over, after the response
// was sent or the stream reset: the place for logging and cleanup.
type DoneFilter interface {
	OnDone(x *Exchange)
}

// Factory creates the per-stream filter. It is compiled once per config
// and shared by every stream of every connection, so it must be safe for
// concurrent use. NewFilter may return nil to take no part in a stream
// (for example when a per-route config disables the filter).
//
// A Factory that holds resources (JWKS fetchers, Wasm VMs, gRPC clients)
// also implements io.Closer; the gateway closes it once no listener uses
// it any more.
type Factory interface {
	NewFilter(x *Exchange) any
}

// FactoryFunc adapts a function to Factory.
type FactoryFunc func(x *Exchange) any

// NewFilter calls f.
func (f FactoryFunc) NewFilter(x *Exchange) any { return f(x) }
