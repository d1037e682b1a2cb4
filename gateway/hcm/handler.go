package hcm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// Handler serves the HTTP requests of every connection of a listener.
// Each connection carries its Config (see Conn); Views returns the
// current snapshot's view, read once per request.
type Handler struct {
	Views func() View
	// Panics counts filter panics (each failed one request with a 500).
	Panics filters.Counter
}

// stream is the per-request state of the chain.
type stream struct {
	x       filters.Exchange
	enc     encoder
	cfg     *Config
	reqHdr  []filters.RequestHeadersFilter
	reqBody []filters.RequestBodyFilter
	reqTrl  []filters.RequestTrailersFilter
	done    []filters.DoneFilter
	// the stream's filters in chain order; the response filters run
	// in reverse.
	order []any

	// Backing arrays for the slices above and the encoder's, so a short
	// chain costs no allocation beyond the stream itself.
	orderBuf   [4]any
	reqHdrBuf  [4]filters.RequestHeadersFilter
	respHdrBuf [4]filters.ResponseHeadersFilter
	vals       values
	// external is true for a request from outside the trust boundary
	// (see markEdge).
	external bool
	// mu serializes the request body filters with the response filters
	// once the router streams the body upstream (see bodyPipe.run).
	mu sync.Mutex
	// duplex is set when the HTTP/1.1 request body streams full duplex
	// (see closeDuplexBody).
	duplex *http.ResponseController
	// cancel ends x.Context: when the stream idles (see startIdle) or a
	// request body fails while the router sends it.
	cancel context.CancelCauseFunc
	idle   *idleTimer
	idleT  idleTimer
	// counted wraps the downstream body to count its bytes.
	counted countingBody
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn := connFrom(r.Context())
	if conn == nil || conn.Config == nil {
		http.Error(w, "no filter chain for this connection", http.StatusInternalServerError)
		return
	}
	cfg := conn.Config
	view := h.Views()
	s := &stream{cfg: cfg}
	x := &s.x
	x.Info.Start = time.Now()
	x.Context = upstream.WithSet(r.Context(), view)
	x.Downstream = conn.Info
	if r.TLS != nil {
		x.Downstream.TLS = r.TLS
	}
	x.Log = cfg.log
	x.Response.Header = w.Header()
	s.enc = encoder{w: w, x: x, cfg: cfg, limit: cfg.bufferLimit, vals: &s.vals}
	x.Encoder = &s.enc

	cfg.stats.begin()
	defer s.finish(h)
	defer s.closeDuplexBody(r)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				if s.idleTimedOut() && !s.enc.started {
					s.idleReply()
					return
				}
				panic(v)
			}
			h.filterPanicked(cfg, v)
			if s.enc.started {
				panic(http.ErrAbortHandler)
			}
			s.local(filters.LocalReply{Status: http.StatusInternalServerError, Body: "filter panic", Details: detailsFilterPanic}, nil)
		}
	}()

	if !s.prepare(r) {
		return
	}

	table := cfg.Inline
	if table == nil && view != nil {
		table = view.RouteTable(cfg.RDSName)
	}
	if s.external && table != nil {
		for _, k := range table.InternalOnlyHeaders() {
			r.Header.Del(k)
		}
	}
	match := cfg.matcherFor(table)
	x.Route = match(x)
	x.SetRouteMatcher(match)
	if d := idleTimeoutFor(x, cfg.streamIdleTimeout); d > 0 {
		s.startIdle(d)
	}
	s.build()

	endStream := r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	var body io.ReadCloser = r.Body
	if body == nil {
		body = http.NoBody
	}
	if !endStream && r.ProtoMajor == 1 {
		// A proxy is full duplex: the upstream may answer before the
		// request body ended, and the body must keep flowing while the
		// response does. Without this, net/http would read and discard
		// what is left of the body when the response head is written.
		s.duplex = http.NewResponseController(w)
		_ = s.duplex.EnableFullDuplex()
	}
	if !endStream {
		// %BYTES_RECEIVED% counts the body as the downstream sent it.
		s.counted = countingBody{ReadCloser: body, n: &x.Info.BytesReceived, r: r, trailer: x.Request.Trailer}
		body = &s.counted
	}
	var pipe *bodyPipe
	if (len(s.reqBody) > 0 || len(s.reqTrl) > 0) && !endStream {
		pipe = newBodyPipe(body, x, s.reqBody, cfg.bufferLimit, &s.mu)
		pipe.trailers = s.reqTrl
		pipe.panicked = func(v any) { h.filterPanicked(cfg, v) }
		if s.cancel == nil {
			s.startIdle(0)
		}
		pipe.abort, pipe.idle = s.cancel, s.idle
		s.enc.mu = &s.mu
		body = pipe
	}
	x.RequestBody = body

	for i, f := range s.reqHdr {
		if pipe != nil && i == len(s.reqHdr)-1 && x.Request.ContentLength >= 0 {
			// The terminal filter is next: let the body filters see
			// the start of the body (all of it, if one buffers) so the
			// upstream request declares the length they produce. A
			// body of unknown length goes upstream chunked anyway, and
			// is not waited for: it may be a stream (gRPC) whose client
			// sends only after it hears from the server.
			n, err := pipe.prime(x.Request.ContentLength)
			if err != nil {
				s.bodyFailed(err, pipe.stopped)
				return
			}
			x.Request.ContentLength = n
			pipe = nil
		}
		switch f.OnRequestHeaders(x, endStream) {
		case filters.Continue:
		case filters.StopAndBuffer:
			// The filter wants the whole body before the request goes
			// on: read it now through the body filters.
			b, err := readAll(x.RequestBody, cfg.bufferLimit)
			if err != nil {
				stopped := any(f)
				if pipe != nil && pipe.stopped != nil {
					stopped = pipe.stopped
				}
				s.bodyFailed(err, stopped)
				return
			}
			x.RequestBody = io.NopCloser(bytes.NewReader(b))
			x.Request.ContentLength = int64(len(b))
			pipe = nil
		case filters.Stop:
			if s.enc.started {
				// The filter answered through the encoder itself (the
				// router's redirects and direct responses do).
				return
			}
			if rep := x.LocalReply(); rep != nil {
				s.local(*rep, f)
				return
			}
			panic(http.ErrAbortHandler)
		}
	}
}

// duplexDrain bounds how long an answered HTTP/1.1 request may still
// send the rest of its body; see closeDuplexBody.
const duplexDrain = time.Second

// closeDuplexBody ends a full-duplex HTTP/1.1 request body before the
// response is finished. net/http would otherwise close the connection
// over the unread rest of the body after the response, and the client's
// kernel answers that with a reset that can destroy the response before
// the client reads it (a 401 to a POST, say). Closing the body here
// reads and discards what is left, as net/http does for requests that
// are not full duplex, within duplexDrain; past it, the connection is
// not reused.
func (s *stream) closeDuplexBody(r *http.Request) {
	if s.duplex == nil {
		return
	}
	_ = s.duplex.SetReadDeadline(time.Now().Add(duplexDrain))
	_ = r.Body.Close()
}

// filterPanicked counts and logs a panic a filter raised.
func (h *Handler) filterPanicked(cfg *Config, v any) {
	if h.Panics != nil {
		h.Panics.Inc()
	}
	cfg.log.Error("filter panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}

// prepare normalizes the request head and fills x.Request. It answers
// and returns false for requests that must not go on.
func (s *stream) prepare(r *http.Request) bool {
	x, cfg := &s.x, s.cfg
	if cfg.headersTooLarge(r) {
		s.local(filters.LocalReply{Status: http.StatusRequestHeaderFieldsTooLarge, Body: "Request Header Fields Too Large", Details: detailsHeadersTooLarge}, nil)
		return false
	}
	x.Request.Method = r.Method
	x.Request.Protocol = r.Proto
	x.Request.Header = r.Header
	x.Request.Trailer = r.Trailer
	if r.Trailer == nil && r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// A body of unknown length may end with trailers nobody
		// declared: the router hands this map upstream, and the body
		// fills it at its end (see countingBody).
		x.Request.Trailer = http.Header{}
	}
	x.Request.ContentLength = r.ContentLength
	x.Request.Authority = r.Host
	x.Request.Scheme = "http"
	if r.TLS != nil || x.Downstream.TLS != nil {
		x.Request.Scheme = "https"
	}
	path := r.RequestURI
	if r.Method == http.MethodConnect {
		path = ""
	} else if path == "" || (path[0] != '/' && path != "*") {
		// Absolute form (a forward-proxy request line): keep the path.
		path = r.URL.RequestURI()
		if r.URL.Host != "" {
			x.Request.Authority = r.URL.Host
		}
	}
	if path == "*" && r.Method != http.MethodOptions {
		// The asterisk form is for OPTIONS only (RFC 9112 section 3.2.4).
		s.local(filters.LocalReply{Status: http.StatusBadRequest, Body: "Bad Request", Details: detailsInvalidPath}, nil)
		return false
	}
	if r.Method != http.MethodConnect && path != "*" {
		if path == "" || path[0] != '/' {
			s.local(filters.LocalReply{Status: http.StatusBadRequest, Body: "Bad Request", Details: detailsInvalidPath}, nil)
			return false
		}
		np, redirect, ok := cfg.normalizePathOf(path)
		if !ok {
			s.local(filters.LocalReply{Status: http.StatusBadRequest, Body: "Bad Request", Details: detailsInvalidPath}, nil)
			return false
		}
		if redirect {
			s.local(filters.LocalReply{Status: http.StatusMovedPermanently, Header: http.Header{"Location": {np}}, Details: "path_normalization_redirect"}, nil)
			return false
		}
		path = np
	}
	x.Request.Path = path
	if cfg.stripAnyHostPort {
		x.Request.Authority = stripPort(x.Request.Authority)
	} else if cfg.stripMatchingPort && x.Downstream.LocalAddr.IsValid() {
		if strings.HasSuffix(x.Request.Authority, fmt.Sprintf(":%d", x.Downstream.LocalAddr.Port())) {
			x.Request.Authority = stripPort(x.Request.Authority)
		}
	}

	h := r.Header
	upgrade := false
	if up := first(h["Upgrade"]); up != "" && headerHasToken(h, "Connection", "upgrade") {
		upgrade = cfg.upgrades[strings.ToLower(up)]
	}
	stripHopByHop(h, upgrade)
	if upgrade {
		h.Set("Upgrade", r.Header.Get("Upgrade"))
	}

	external := false
	if cfg.useRemoteAddress && x.Downstream.RemoteAddr.IsValid() {
		remote := x.Downstream.RemoteAddr.Addr().Unmap()
		ip := remote.String()
		// Behind trusted proxies (xff_num_trusted_hops), the client is
		// the address they saw, read before the peer is appended.
		client, clientIP := remote, ip
		forwarded := len(h["X-Forwarded-For"]) > 0
		if cfg.xffTrustedHops > 0 {
			if a, ok := xffClient(h["X-Forwarded-For"], cfg.xffTrustedHops); ok {
				client, clientIP = a, a.String()
				x.Downstream.RemoteAddr = netip.AddrPortFrom(a, 0)
			}
		}
		if !cfg.skipXFFAppend {
			if prior := h["X-Forwarded-For"]; len(prior) > 0 {
				h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
			} else {
				h["X-Forwarded-For"] = s.vals.one(ip)
			}
		}
		if external = s.markEdge(h, client, forwarded); external {
			h["X-Envoy-External-Address"] = s.vals.one(clientIP)
		} else {
			delete(h, "X-Envoy-External-Address")
		}
		h["X-Forwarded-Proto"] = s.vals.one(x.Request.Scheme)
	} else if first(h["X-Forwarded-Proto"]) == "" {
		h["X-Forwarded-Proto"] = s.vals.one(x.Request.Scheme)
	}
	st := r.TLS
	if st == nil {
		st = x.Downstream.TLS
	}
	cfg.xfcc.apply(h, st, x.Downstream.LocalURISANs)
	if cfg.via != "" {
		h.Add("Via", cfg.via)
	}
	if external && !cfg.preserveExtReqID {
		// An edge request's id is the gateway's to give unless
		// preserve_external_request_id trusts the client's, as in Envoy.
		delete(h, "X-Request-Id")
	}
	s.external = external
	if id := first(h["X-Request-Id"]); id != "" {
		x.Request.ID = id
	} else if cfg.generateRequestID {
		x.Request.ID = newRequestID()
		h["X-Request-Id"] = s.vals.one(x.Request.ID)
	}
	return true
}

// build instantiates the chain's filters for this stream, leaving out
// those the route disables (or does not enable, for filters disabled by
// default).
func (s *stream) build() {
	x := &s.x
	s.order, s.reqHdr, s.enc.hdr = s.orderBuf[:0], s.reqHdrBuf[:0], s.respHdrBuf[:0]
	for _, e := range s.cfg.chain {
		var pc any
		if x.Route != nil {
			pc = x.Route.PerFilterConfig(e.name)
		}
		if _, off := pc.(filters.Disabled); off {
			continue
		}
		if e.disabled && pc == nil {
			continue
		}
		f := e.factory.NewFilter(x)
		if f == nil {
			continue
		}
		s.order = append(s.order, f)
		if h, ok := f.(filters.RequestHeadersFilter); ok {
			s.reqHdr = append(s.reqHdr, h)
		}
		if b, ok := f.(filters.RequestBodyFilter); ok {
			s.reqBody = append(s.reqBody, b)
		}
		if t, ok := f.(filters.RequestTrailersFilter); ok {
			s.reqTrl = append(s.reqTrl, t)
		}
		if d, ok := f.(filters.DoneFilter); ok {
			s.done = append(s.done, d)
		}
	}
	// Response filters run in reverse chain order.
	for i := len(s.order) - 1; i >= 0; i-- {
		if h, ok := s.order[i].(filters.ResponseHeadersFilter); ok {
			s.enc.hdr = append(s.enc.hdr, h)
		}
		if b, ok := s.order[i].(filters.ResponseBodyFilter); ok {
			s.enc.body = append(s.enc.body, b)
		}
		if t, ok := s.order[i].(filters.ResponseTrailersFilter); ok {
			s.enc.trl = append(s.enc.trl, t)
		}
	}
}

// local answers with a local reply. stopped is the filter that answered;
// the reply then passes through the response filters of every filter
// in the chain, as Envoy's sendLocalReply encodes it from the first
// encoder filter on: those of filters before the one that answered,
// its own, and those of filters after it that never saw the request.
// A nil stopped (the request never reached a filter, or one panicked)
// runs none of them.
func (s *stream) local(rep filters.LocalReply, stopped any) {
	x := &s.x
	if s.enc.started {
		panic(http.ErrAbortHandler)
	}
	if x.LocalReply() == nil {
		x.SendLocalReply(rep)
	}
	if stopped == nil {
		// No filter answered: the request never reached the chain, or
		// a filter panicked and the chain is in no state to run.
		s.enc.hdr, s.enc.body, s.enc.trl = nil, nil, nil
	}
	x.Response.Status = rep.Status
	h := x.Response.Header
	for k, v := range rep.Header {
		h[k] = v
	}
	if rep.Body != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain")
	}
	end := rep.Body == ""
	if end {
		h.Set("Content-Length", "0")
	} else {
		h.Set("Content-Length", strconv.Itoa(len(rep.Body)))
	}
	if err := s.enc.WriteHeaders(end); err != nil {
		return
	}
	if !end {
		_ = s.enc.WriteBody([]byte(rep.Body), true)
	}
}

func (s *stream) bodyFailed(err error, stopped any) {
	switch {
	case errors.Is(err, errPayloadTooLarge):
		s.local(filters.LocalReply{Status: http.StatusRequestEntityTooLarge, Body: "Payload Too Large", Details: detailsBodyTooLarge}, stopped)
	case errors.Is(err, filters.ErrLocalReply):
		if rep := s.x.LocalReply(); rep != nil {
			s.local(*rep, stopped)
			return
		}
		panic(http.ErrAbortHandler)
	default:
		panic(http.ErrAbortHandler)
	}
}

// finish runs the done callbacks and access logs.
func (s *stream) finish(h *Handler) {
	x := &s.x
	end := time.Now()
	s.idle.stop()
	if s.cancel != nil {
		s.cancel(nil)
	}
	if x.Response.Status == 0 && s.enc.status != 0 {
		x.Response.Status = s.enc.status
	}
	// A request body may still be streaming upstream when the response
	// is over; its filters must not run beside the done callbacks.
	s.enc.lock()
	defer s.enc.unlock()
	for _, d := range s.done {
		func() {
			defer func() { _ = recover() }()
			d.OnDone(x)
		}()
	}
	s.cfg.stats.end(x.Response.Status, end.Sub(x.Info.Start))
	for _, l := range s.cfg.accessLogs {
		l.Log(x, end)
	}
}

// first is the first of a header's values, "" for none: Header.Get
// without canonicalizing a name that already is canonical.
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// headerHasToken reports whether a comma-separated header lists token,
// ignoring parameters ("trailers;q=1" lists trailers).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for _, f := range strings.Split(v, ",") {
			f, _, _ = strings.Cut(f, ";")
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// The router package's Route must satisfy the filter API's view of it.
var _ filters.Route = (*router.Route)(nil)

// countingBody counts the bytes read from the downstream body. At its
// end it moves the trailers the server read into the exchange's map,
// which the request body and trailers filters and the upstream request
// share; the server may have put them in a map of its own when the
// request declared none.
type countingBody struct {
	io.ReadCloser
	n       *int64
	r       *http.Request
	trailer http.Header
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	*c.n += int64(n)
	if err == io.EOF && c.trailer != nil {
		for k, v := range c.r.Trailer {
			if len(v) > 0 {
				c.trailer[k] = v
			}
		}
	}
	return n, err
}
