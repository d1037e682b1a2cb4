package hcm

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/waygate/waygate/filters"
)

// errResponseTooLarge ends a response whose buffered body outgrew the
// buffer limit; Envoy answers 500 in that case.
var errResponseTooLarge = errors.New("response body exceeds the buffer limit")

// encoder implements filters.Encoder: response filters run in reverse
// chain order, then the response goes to the downstream.
type encoder struct {
	w      http.ResponseWriter
	x      *filters.Exchange
	cfg    *Config
	hdr    []filters.ResponseHeadersFilter
	body   []filters.ResponseBodyFilter
	trl    []filters.ResponseTrailersFilter
	bufs   []*filters.Buffer
	limit  int
	status int
	vals   *values
	mu     *sync.Mutex
	idle   *idleTimer

	started bool // headers reached the downstream
	held    bool // a header filter asked for the whole body first
	heldOut []byte
	ended   bool
}

func (e *encoder) Started() bool { return e.started }

func (e *encoder) WriteHeaders(endStream bool) error {
	x := e.x
	e.idle.touch()
	if e.runHeaderFilters(endStream) {
		return e.replaceWithLocal()
	}
	if e.held {
		return nil
	}
	e.flushHeaders(-1)
	if endStream {
		e.ended = true
	} else if _, sized := x.Response.Header["Content-Length"]; !sized {
		// A body of unknown length may be a stream whose next bytes
		// wait on the client (gRPC, a chat over a long POST), so the
		// head goes out now rather than with the first body bytes.
		_ = http.NewResponseController(e.w).Flush()
	}
	return nil
}

func (e *encoder) WriteBody(p []byte, endStream bool) error {
	return e.writeBody(p, endStream, false)
}

// writeBody runs the body filters on p and sends what they let through.
// trailers is set when trailers follow the end of the body.
func (e *encoder) writeBody(p []byte, endStream, trailers bool) error {
	if e.ended {
		return nil
	}
	e.idle.touch()
	out, held, stop, err := e.runBodyFilters(p, endStream)
	switch {
	case stop:
		return e.replaceWithLocal()
	case errors.Is(err, errResponseTooLarge):
		return e.tooLarge()
	case err != nil:
		return err
	case held:
		return nil
	}
	if e.held {
		e.heldOut = append(e.heldOut, out...)
		if len(e.heldOut) > e.limit {
			return e.tooLarge()
		}
		if !endStream {
			return nil
		}
		if trailers {
			// Over HTTP/1.1 trailers need a chunked body, which a
			// Content-Length would rule out.
			delete(e.x.Response.Header, "Content-Length")
			e.flushHeaders(-1)
		} else {
			e.flushHeaders(len(e.heldOut))
		}
		out = e.heldOut
		e.held = false
	} else if !e.started {
		e.flushHeaders(-1)
	}
	if len(out) > 0 {
		e.x.Info.BytesSent += int64(len(out))
		if _, err := e.w.Write(out); err != nil {
			return err
		}
	}
	if endStream {
		e.ended = true
		if trailers {
			// Commit the head, chunked, while the handler runs: net/http
			// would otherwise give a short body a Content-Length at its
			// end, leaving an HTTP/1.1 client no room for the trailers.
			_ = http.NewResponseController(e.w).Flush()
		}
	} else if len(out) > 0 {
		// Stream as the upstream does: server-sent events and gRPC
		// streams must not sit in a buffer.
		_ = http.NewResponseController(e.w).Flush()
	}
	return nil
}

// runHeaderFilters runs the response header filters; stopped reports
// that one ended the exchange with a local reply. The lock is released
// by defer: a filter that panics must not leave it held for the 500 the
// handler then sends.
func (e *encoder) runHeaderFilters(endStream bool) (stopped bool) {
	e.lock()
	defer e.unlock()
	for _, f := range e.hdr {
		switch f.OnResponseHeaders(e.x, endStream) {
		case filters.Stop:
			return true
		case filters.StopAndBuffer:
			if !endStream {
				e.held = true
			}
		}
	}
	return false
}

// runBodyFilters passes one chunk through the response body filters. It
// returns what goes on downstream, held when a filter holds the data for
// now, or stop when a filter ended the exchange with a local reply.
func (e *encoder) runBodyFilters(p []byte, endStream bool) (out []byte, held, stop bool, err error) {
	e.lock()
	defer e.unlock()
	out = p
	for i, f := range e.body {
		var b *filters.Buffer
		if e.bufs != nil && e.bufs[i] != nil {
			e.bufs[i].Append(out)
			b = e.bufs[i]
		} else {
			b = filters.NewBuffer(out)
		}
		switch f.OnResponseBody(e.x, b, endStream) {
		case filters.Stop:
			return nil, false, true, nil
		case filters.StopAndBuffer:
			if endStream {
				out = b.Bytes()
				break
			}
			if e.bufs == nil {
				e.bufs = make([]*filters.Buffer, len(e.body))
			}
			if e.bufs[i] == nil {
				e.bufs[i] = filters.NewBuffer(append([]byte(nil), b.Bytes()...))
			}
			if e.bufs[i].Len() > e.limit {
				return nil, false, false, errResponseTooLarge
			}
			if !e.started {
				e.held = true
			}
			return nil, true, false, nil
		default:
			out = b.Bytes()
			if e.bufs != nil {
				e.bufs[i] = nil
			}
		}
	}
	return out, false, false, nil
}

// lock serializes filter callbacks with the request body filters, which
// run on the goroutine that sends the body upstream: a filter sees one
// callback at a time, as the Exchange contract and Envoy promise. It is
// nil, and free, when no request body filter runs.
func (e *encoder) lock() {
	if e.mu != nil {
		e.mu.Lock()
	}
}

func (e *encoder) unlock() {
	if e.mu != nil {
		e.mu.Unlock()
	}
}

// WriteTrailers ends the body, then sends the trailers. The body filters
// get the end of the stream first, as they would without trailers: one
// that buffers the body until its end (StopAndBuffer) lets it go then.
func (e *encoder) WriteTrailers(t http.Header) error {
	if e.ended {
		return nil
	}
	// The body filters' end of the stream comes with the trailers in
	// place: a Wasm filter's proxy_on_response_trailers runs there.
	e.x.Response.Trailer = t
	if err := e.writeBody(nil, true, true); err != nil {
		return err
	}
	if e.runTrailerFilters() {
		return errAbort
	}
	h := e.w.Header()
	for k, v := range e.x.Response.Trailer {
		h[http.TrailerPrefix+k] = v
	}
	return nil
}

// runTrailerFilters runs the response trailers filters; stopped reports
// that one ended the exchange, which can only reset it now.
func (e *encoder) runTrailerFilters() (stopped bool) {
	if len(e.trl) == 0 || len(e.x.Response.Trailer) == 0 {
		return false
	}
	e.lock()
	defer e.unlock()
	for _, f := range e.trl {
		if f.OnResponseTrailers(e.x) == filters.Stop {
			return true
		}
	}
	return false
}

func (e *encoder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	e.started = true
	return http.NewResponseController(e.w).Hijack()
}

// flushHeaders sends the response head. contentLength >= 0 replaces the
// upstream's Content-Length after filters changed a buffered body.
func (e *encoder) flushHeaders(contentLength int) {
	if e.started {
		return
	}
	e.started = true
	x := e.x
	h := x.Response.Header
	if contentLength >= 0 {
		h.Set("Content-Length", strconv.Itoa(contentLength))
	}
	e.mutateHeaders(h)
	status := x.Response.Status
	if status == 0 {
		status = http.StatusOK
	}
	e.status = status
	// x.Response.Header is the ResponseWriter's own map (see newStream),
	// so nothing is copied here.
	e.w.WriteHeader(status)
}

// mutateHeaders applies the connection manager's own response headers,
// to upstream responses and local replies alike, as Envoy's
// ConnectionManagerUtility::mutateResponseHeaders does.
func (e *encoder) mutateHeaders(h http.Header) {
	// Connections of a replaced config close after this response so
	// clients reconnect onto the new one: HTTP/1 ones at once, HTTP/2
	// ones with a GOAWAY once idle (net/http's HTTP/2 server takes
	// Connection: close to mean that, and does not send the header). It
	// is set here, after the filters, because the router drops the
	// upstream's Connection header.
	if e.cfg.draining.Load() {
		h.Set("Connection", "close")
	}
	switch e.cfg.serverTransform {
	case hcmv3.HttpConnectionManager_OVERWRITE:
		h["Server"] = e.vals.one(e.cfg.serverName)
	case hcmv3.HttpConnectionManager_APPEND_IF_ABSENT:
		if first(h["Server"]) == "" {
			h.Set("Server", e.cfg.serverName)
		}
	}
	if e.cfg.via != "" {
		h.Add("Via", e.cfg.via)
	}
	if e.cfg.alwaysSetReqID && e.x.Request.ID != "" {
		h.Set("X-Request-Id", e.x.Request.ID)
	}
}

// replaceWithLocal answers with the local reply a response filter set.
// Once headers left, the stream can only be reset.
func (e *encoder) replaceWithLocal() error {
	e.lock()
	r := e.x.LocalReply()
	e.unlock()
	if e.started || r == nil {
		return errAbort
	}
	clear(e.x.Response.Header)
	e.started = true
	e.status = r.Status
	e.ended = true
	e.mutateHeaders(e.x.Response.Header)
	e.x.Info.BytesSent += int64(len(r.Body))
	writeLocal(e.w, r)
	return errStopped
}

// tooLarge answers a response whose buffered body outgrew the buffer
// limit. While no header left, that is Envoy's 500 straight to the
// downstream, past the response filters (they saw the headers already);
// after, only a reset is left.
func (e *encoder) tooLarge() error {
	if e.started {
		return errAbort
	}
	e.bufs, e.held, e.heldOut = nil, false, nil
	e.lock()
	e.x.SendLocalReply(filters.LocalReply{Status: http.StatusInternalServerError, Body: "Internal Server Error", Details: detailsRespTooLarge})
	e.unlock()
	return e.replaceWithLocal()
}

var (
	// errAbort resets the downstream stream.
	errAbort = errors.New("stream reset by a response filter")
	// errStopped tells the router a response filter already answered.
	errStopped = errors.New("response replaced by a local reply")
)
