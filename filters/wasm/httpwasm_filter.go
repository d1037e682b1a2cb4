package wasm

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/waygate/waygate/filters"
)

// http-wasm feature flags, the argument and result of enable_features.
// https://http-wasm.io/http-handler-abi/#features
const (
	featureBufferRequest  = 1
	featureBufferResponse = 2
	featureTrailers       = 4
	// hwFeatures are the features the host supports: every one, as the
	// chain hands filters the request and response trailers.
	hwFeatures = featureBufferRequest | featureBufferResponse | featureTrailers
)

// hwMaxBody bounds a request body the guest reads with buffer_request
// on, before the chain's own buffer limit applies to what it keeps.
const hwMaxBody = 16 << 20

// hwStream is one stream's state in the http-wasm filter. The chain
// calls it from one goroutine at a time; host functions reach it
// through its instance's cur, under the instance's lock.
//
// The ABI's two calls map onto the chain's phases: handle_request runs
// on the request headers, pulling the request body from the downstream
// if the guest reads it (or its trailers, which follow the body);
// handle_response runs on the response headers, or, with
// buffer_response, once the whole response body and its trailers are
// in.
type hwStream struct {
	f  *httpWasmFactory
	vm *hwVM
	x  *filters.Exchange

	features  uint32
	afterNext bool // handle_request returned next=1
	reqCtx    uint32
	responded bool // handle_response ran (or will not run)
	failed    bool // the fail strategy was applied
	routeMod  bool // request headers, method or path changed

	// The request body: what the guest read (kept when buffering) and
	// what it wrote.
	reqRead    []byte
	reqTouched bool
	reqEOF     bool
	reqErr     error
	reqWritten []byte
	reqWrote   bool
	reqAfter   []byte // what read_body returns of the buffered body after next
	readBuf    []byte // what a read from the client lands in
	pending    []byte // read from the client, not yet by the guest
	pendingErr error  // how the client's last read ended
	reqDrained bool   // the host read the rest of the body for the trailers

	// The response the guest builds in handle_request: it is the local
	// reply when the guest does not call next, and is merged into the
	// upstream's response otherwise.
	respHeader http.Header
	status     int
	respBody   []byte
	respWrote  bool
	// respTrailer are the response trailers the guest set before next,
	// merged into the upstream's trailers.
	respTrailer http.Header

	// The response body in handle_response, with buffer_response.
	body     []byte
	bodyOff  int
	bodyOut  []byte
	bodyNew  bool
	buffered bool // response headers held for the body
}

// OnRequestHeaders runs handle_request. A guest that does not call next
// answers with the response it built (200 by default). A guest that
// read or wrote the request body gets the chain to buffer what is left
// of it, so the upstream request declares the body's length.
func (s *hwStream) OnRequestHeaders(x *filters.Exchange, endStream bool) filters.Status {
	v := s.lock()
	if v == nil {
		return s.failure(x)
	}
	s.x = x
	s.features = v.features
	s.reqEOF = endStream
	ctxNext, err := v.call(s, v.handleRequest)
	v.mu.Unlock()
	if err != nil {
		st := s.failure(x)
		if st == filters.Continue && (s.reqTouched || s.reqDrained) {
			// Fail open: what the guest read with buffer_request on,
			// and what the host read for the trailers, still goes
			// upstream.
			s.replaceRequestBody(x)
			return filters.StopAndBuffer
		}
		return st
	}
	if s.reqErr != nil {
		s.responded = true
		switch {
		case errors.Is(s.reqErr, errHWBodyTooLarge):
			x.SendLocalReply(filters.LocalReply{Status: http.StatusRequestEntityTooLarge, Body: "Payload Too Large", Details: "request_payload_too_large"})
		case errors.Is(s.reqErr, errHWBodyStalled):
			x.SendLocalReply(filters.LocalReply{Status: http.StatusRequestTimeout, Body: "Request Timeout", Details: "wasm_request_body_stalled"})
		}
		// Otherwise the downstream went away while the guest read its
		// body: the stream is reset.
		return filters.Stop
	}
	if s.routeMod {
		x.ClearRouteCache()
	}
	if uint32(ctxNext) == 0 {
		s.responded = true
		rep := filters.LocalReply{Status: s.statusOr200(), Body: string(s.respBody), Header: s.respHeader, Details: "wasm_local_reply"}
		x.SendLocalReply(rep)
		return filters.Stop
	}
	s.afterNext = true
	s.reqCtx = uint32(ctxNext >> 32)
	if s.reqTouched || s.reqWrote || s.reqDrained {
		s.replaceRequestBody(x)
		return filters.StopAndBuffer
	}
	return filters.Continue
}

// replaceRequestBody makes the upstream's body what the guest wrote,
// else what it read with buffer_request on followed by the rest.
func (s *hwStream) replaceRequestBody(x *filters.Exchange) {
	src := x.RequestBody
	// What was read ahead of the guest goes first of the rest.
	var rest io.Reader = src
	switch {
	case s.reqDrained && s.reqErr == nil:
		// The client's body ended: reading it again would put back
		// the trailers the guest changed.
		rest = bytes.NewReader(s.pending)
	case len(s.pending) > 0:
		rest = io.MultiReader(bytes.NewReader(s.pending), src)
	}
	switch {
	case s.reqWrote:
		x.RequestBody = io.NopCloser(bytes.NewReader(s.reqWritten))
	case s.features&featureBufferRequest != 0 && s.reqEOF:
		x.RequestBody = io.NopCloser(bytes.NewReader(s.reqRead))
	case s.features&featureBufferRequest != 0:
		x.RequestBody = readCloser{io.MultiReader(bytes.NewReader(s.reqRead), rest), src}
	default:
		x.RequestBody = readCloser{rest, src}
	}
	if s.features&featureBufferRequest != 0 {
		s.reqAfter = s.reqRead
	}
	s.reqRead = nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// OnResponseHeaders merges what the guest set on the response in
// handle_request, then runs handle_response, or holds the headers for
// the body when the guest buffers the response (or wrote a body before
// next, which goes first).
func (s *hwStream) OnResponseHeaders(x *filters.Exchange, endStream bool) filters.Status {
	if !s.afterNext || s.responded || s.failed {
		return filters.Continue
	}
	if x.Response.Header == nil {
		x.Response.Header = http.Header{}
	}
	for k, vs := range s.respHeader {
		x.Response.Header[k] = vs
	}
	if s.status != 0 {
		x.Response.Status = s.status
	}
	if s.features&featureBufferResponse == 0 && !s.respWrote {
		return s.respond(x, nil)
	}
	if !endStream {
		s.buffered = true
		return filters.StopAndBuffer
	}
	st := s.respond(x, nil)
	if st != filters.Continue || len(s.bodyOut) == 0 {
		return st
	}
	// The response had no body and now has one: it goes out as a local
	// reply, the only way to add a body to an ended response.
	h := x.Response.Header.Clone()
	h.Del("Content-Length")
	x.SendLocalReply(filters.LocalReply{Status: x.Response.Status, Header: h, Body: string(s.bodyOut)})
	return filters.Stop
}

// OnResponseBody holds the body until it is complete when the headers
// were held, then runs handle_response over it.
func (s *hwStream) OnResponseBody(x *filters.Exchange, body *filters.Buffer, endStream bool) filters.Status {
	if !s.buffered || s.responded || s.failed {
		return filters.Continue
	}
	if !endStream {
		return filters.StopAndBuffer
	}
	st := s.respond(x, body.Bytes())
	if st == filters.Continue {
		body.Set(s.bodyOut)
	}
	return st
}

// OnResponseTrailers merges the response trailers the guest set in
// handle_request into the upstream's. The guest changes them in
// handle_response directly, with buffer_response: they are in place
// when the body ends.
func (s *hwStream) OnResponseTrailers(x *filters.Exchange) filters.Status {
	if !s.afterNext || s.failed || len(s.respTrailer) == 0 {
		return filters.Continue
	}
	for k, vs := range s.respTrailer {
		x.Response.Trailer[k] = vs
	}
	return filters.Continue
}

// respond runs handle_response with body as the upstream's body (nil
// when the response is not buffered). The response the guest wrote
// before next comes first.
func (s *hwStream) respond(x *filters.Exchange, body []byte) filters.Status {
	s.responded = true
	if len(s.respBody) > 0 {
		body = append(append([]byte(nil), s.respBody...), body...)
	}
	s.body, s.bodyOut, s.bodyNew = body, body, false
	v := s.vm
	v.mu.Lock()
	if v.dead.Load() {
		// The instance died after handle_request: the guest's state
		// for this stream is gone, so it finishes without the plugin.
		v.mu.Unlock()
		return filters.Continue
	}
	s.x = x
	_, err := v.call(s, v.handleResponse, uint64(s.reqCtx), b2u(len(x.Info.ResponseFlags) > 0))
	v.mu.Unlock()
	if err != nil {
		return s.failure(x)
	}
	return filters.Continue
}

// OnDone calls handle_response with is_error=1 for a stream that
// called next and never saw a response (reset, client gone), so the
// guest can free what it holds for reqCtx.
func (s *hwStream) OnDone(x *filters.Exchange) {
	defer s.f.done()
	if !s.afterNext || s.responded || s.failed || s.vm == nil {
		return
	}
	s.responded = true
	v := s.vm
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead.Load() {
		return
	}
	s.x = x
	_, _ = v.call(s, v.handleResponse, uint64(s.reqCtx), 1)
}

// lock locks a live instance for the stream's first call, moving it off
// a dead one, or off a busy one when another is free: a stream holds no
// state in an instance before its first call, and an instance may be
// busy for long, waiting on a client's body for a guest.
func (s *hwStream) lock() *hwVM {
	if v := s.vm; v != nil && !v.dead.Load() && v.mu.TryLock() {
		if !v.dead.Load() {
			return v
		}
		v.mu.Unlock()
	}
	for i := range s.f.pool.inst.len() {
		v := s.f.pool.inst.at(i)
		if v != nil && v != s.vm && !v.dead.Load() && v.mu.TryLock() {
			if !v.dead.Load() {
				s.vm = v
				return v
			}
			v.mu.Unlock()
		}
	}
	for range 3 {
		v := s.vm
		if v == nil || v.dead.Load() {
			nv, err := s.f.pool.pick()
			if err != nil {
				return nil
			}
			s.vm, v = nv, nv
		}
		v.mu.Lock()
		if !v.dead.Load() {
			return v
		}
		v.mu.Unlock()
	}
	return nil
}

func (s *hwStream) statusOr200() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// failure applies the plugin's fail strategy to a stream whose instance
// failed or could not start: fail open goes on without the plugin,
// otherwise the stream ends with 500, as an http-wasm host answers a
// guest's error.
func (s *hwStream) failure(x *filters.Exchange) filters.Status {
	s.failed = true
	if s.f.cfg.failOpen {
		return filters.Continue
	}
	x.SendLocalReply(filters.LocalReply{Status: http.StatusInternalServerError, Body: "wasm plugin failed", Details: "wasm_fail_stream"})
	return filters.Stop
}

// responseHeader is the header map of kind (request-side response
// before next, the exchange's after).
func (s *hwStream) responseHeader(create bool) http.Header {
	if s.afterNext {
		if s.x.Response.Header == nil && create {
			// No response yet: handle_response from OnDone.
			s.x.Response.Header = http.Header{}
		}
		return s.x.Response.Header
	}
	if s.respHeader == nil && create {
		s.respHeader = http.Header{}
	}
	return s.respHeader
}
