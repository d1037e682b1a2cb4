package http1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Enabled reports whether plaintext HTTP/1.1 connections go to this
// server rather than to net/http's: unless WAYGATE_HTTP1=nethttp.
var Enabled = sync.OnceValue(func() bool { return os.Getenv("WAYGATE_HTTP1") != "nethttp" })

// Server serves HTTP/1.0 and HTTP/1.1 on the connections handed to it
// with ServeConn. Its zero value is not usable: Handler is required.
type Server struct {
	Handler http.Handler
	// MaxHeaderBytes bounds a request head: the request line, header
	// fields and line endings (431 past it); 1 MiB if 0.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading a request head once its first
	// byte came; IdleTimeout bounds the wait for the next request on a
	// keep-alive connection. Zero means no bound.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// Log receives handler panics; nil discards them.
	Log *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	sweeping bool // see sweep
	closing  atomic.Bool
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return 1 << 20
}

func (s *Server) shuttingDown() bool { return s.closing.Load() }

// Shutdown closes idle connections and makes busy ones close after
// their current exchange. It does not wait: the caller tracks the
// connections it handed over.
func (s *Server) Shutdown() {
	s.closing.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) || c.state.CompareAndSwap(stateParked, stateClosed) {
			c.nc.Close()
		}
	}
}

// Close closes every connection at once.
func (s *Server) Close() {
	s.closing.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.state.Store(stateClosed)
		c.nc.Close()
	}
}

// bgReadDelay is how long a request without a body runs before the
// server starts watching its connection for the client going away.
// Requests answered sooner, nearly all of them even under load, are
// spared the watch: a goroutine and a read per request. A client that
// left is noticed that much later, which costs an upstream request
// that would have been canceled a little more of its time.
const bgReadDelay = 50 * time.Millisecond

// drainTimeout bounds reading what a handler left of a request body.
const drainTimeout = 5 * time.Second

// conn is one connection's state, reused by its exchanges.
type conn struct {
	srv    *Server
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	ctx    context.Context
	remote string
	// state and idleSince are what the sweep reads (see idle.go);
	// parkMu orders its read deadline with the connection's reset of it.
	state     atomic.Int32
	idleSince atomic.Int64
	parkMu    sync.Mutex
	// first feeds the read buffer of a connection woken from parking.
	first firstByte

	// wmu serializes writes of the response with a 100 Continue the
	// body reader sends from another goroutine.
	wmu          sync.Mutex
	continueDone bool

	closeAfter bool
	hijacked   bool
	*exchangeState
	header  http.Header
	headBuf []byte

	// The watch for a client gone while a handler runs (see bgReadDelay).
	bgMu    sync.Mutex
	bgState int
	bgTimer *time.Timer
	bgDone  chan struct{}
	// cancel ends ctx: when the client went away or broke a body's
	// framing, and when the connection closes. It runs the watches on
	// ctx (see Watch).
	cancel context.CancelCauseFunc
	ws     watchers
}

// exchangeState is the state of the connection's exchanges, reused by each:
// about a kilobyte that a parked connection gives back (see park).
type exchangeState struct {
	req request
	w   response
	// The request handed to the handler, its URL and header map are the
	// connection's, reset for each exchange: the handler must not keep
	// them past ServeHTTP (hcm does not; see ServeConn).
	r     http.Request
	rTmpl http.Request // the empty request carrying ctx
	u     url.URL
}

// newExchange makes c's exchange state, with its response header map.
func (c *conn) newExchange() {
	c.exchangeState = &exchangeState{rTmpl: *emptyRequest.WithContext(c.ctx)}
	c.w.header = make(http.Header)
}

const (
	bgOff = iota
	bgArmed
	bgReading
)

// errClientGone is the cause of a request context canceled because the
// client closed its connection.
var errClientGone = errors.New("http1: client closed the connection")

// ServeConn serves nc until it closes. br, if not nil, holds what was
// already read from nc (see Sniff). It closes nc unless a handler
// hijacked it.
//
// Every request of the connection has the same context, made from ctx
// once per connection: it is canceled when the client goes away or
// breaks a body's framing, and when the connection ends, not when
// ServeHTTP returns as with net/http. A handler cancels what it derives
// from it (as hcm and the router do), and a request costs no context of
// its own. Likewise the *http.Request, its URL and header map, and the
// ResponseWriter are the connection's, reset for each request: a
// handler must not keep them past ServeHTTP. A request body is the
// request's own, and fails its reads once the exchange is over.
//
// A connection idle for a while is served on from a new goroutine (see
// idle.go): ServeConn may return before the connection ends, which the
// caller learns of by nc's Close.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn, br *bufio.Reader) {
	if br == nil {
		br = readers.Get().(*bufio.Reader)
		br.Reset(nc)
	}
	c := &conn{srv: s, nc: nc, br: br}
	inner, cancel := context.WithCancelCause(ctx)
	c.ctx = &watchedCtx{Context: inner, ws: &c.ws}
	c.cancel = func(cause error) {
		cancel(cause)
		c.ws.end()
	}
	c.newExchange()
	c.header = make(http.Header)
	if a := nc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	s.track(c)
	c.serve()
}

// serve runs exchanges until the connection ends or parks.
func (c *conn) serve() {
	for {
		switch c.serveOne() {
		case next:
		case parked:
			c.park()
			return
		default:
			c.end()
			return
		}
	}
}

// end forgets and closes the connection.
func (c *conn) end() {
	s := c.srv
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.state.Store(stateClosed)
	c.cancel(nil)
	if !c.hijacked {
		c.nc.Close()
		c.releaseWriter()
		if c.br != nil && c.br.Buffered() == 0 {
			c.releaseReader()
		}
	}
}

// What serveOne tells serve.
const (
	done = iota
	next
	parked
)

// serveOne reads one request and answers it.
func (c *conn) serveOne() int {
	s := c.srv
	if c.br.Buffered() == 0 {
		c.releaseWriter()
		ok, park := c.waitIdle()
		if park {
			return parked
		}
		if !ok {
			return done
		}
	} else if !c.state.CompareAndSwap(stateIdle, stateActive) && c.state.Load() != stateActive {
		return done
	}
	// A request head that came whole, as nearly all do, needs no
	// deadline: the two timer updates would cost more than the parse.
	deadline := s.ReadHeaderTimeout > 0 && !c.headBuffered()
	if deadline {
		_ = c.nc.SetReadDeadline(time.Now().Add(s.ReadHeaderTimeout))
	}
	head, serr, err := c.readHead()
	if err != nil {
		return done
	}
	// c.header is empty: new, or cleared when the last exchange ended.
	c.req = request{header: c.header}
	if serr == nil {
		serr = parseHead(string(head), &c.req)
	}
	c.writer()
	if serr != nil {
		c.reject(serr)
		return done
	}
	if deadline {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	if !c.serveRequest() {
		return done
	}
	// Nothing of the exchange stays reachable from the connection:
	// values in the header maps may point into the handler's state.
	clear(c.header)
	clear(c.w.header)
	c.r = http.Request{}
	return next
}

// headBuffered reports whether the read buffer holds a whole request
// head.
func (c *conn) headBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	return bytes.Contains(b, crlfcrlf)
}

var crlfcrlf = []byte("\r\n\r\n")

// readHead reads the request head into the connection's buffer.
func (c *conn) readHead() ([]byte, *statusError, error) {
	head, buf, serr, err := readHead(c.br, c.headBuf[:0], c.srv.maxHeaderBytes())
	if cap(buf) <= 16<<10 {
		c.headBuf = buf[:0]
	}
	return head, serr, err
}

// readHead reads a request head up to its empty line into buf, checking
// that every line ends with CRLF, and returns it without the CRLF
// ending its last line. A protocol error comes back as a statusError;
// an I/O error means the connection is gone.
func readHead(br *bufio.Reader, buf []byte, max int) (head, grown []byte, _ *statusError, _ error) {
	lineStart := 0
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > max {
			if lineStart == 0 {
				return nil, buf, errURITooLong, nil
			}
			return nil, buf, errHeadersTooLarge, nil
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, buf, nil, err
		}
		line := buf[lineStart:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return nil, buf, errBareLF, nil
		}
		if len(line) == 2 {
			if lineStart == 0 {
				// Empty lines before a request line are ignored
				// (RFC 9112 section 2.2), a few of them.
				buf = buf[:0]
				max -= 2
				continue
			}
			return buf[:lineStart-2], buf, nil, nil
		}
		lineStart = len(buf)
	}
}

// reject answers a request refused before any handler saw it, and the
// connection closes: where the request ends is not to be trusted.
func (c *conn) reject(e *statusError) {
	bw := c.bw
	writeStatusLine(bw, 1, e.code)
	body := e.reason
	bw.WriteString("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(body)))
	bw.WriteString("\r\n\r\n")
	bw.WriteString(body)
	if bw.Flush() != nil {
		return
	}
	// Closing over unread input would send a reset, which can destroy
	// the answer before the client reads it: half-close, and read what
	// the client still sends for a moment, as net/http does.
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = c.nc.SetReadDeadline(time.Now().Add(rejectLinger))
		_, _ = io.CopyN(io.Discard, c.br, maxDrain)
	}
}

// rejectLinger bounds how long a refused request's connection reads
// what the client still sends before it closes.
const rejectLinger = 500 * time.Millisecond

var emptyRequest http.Request

func (c *conn) serveRequest() bool {
	p := &c.req
	c.r = c.rTmpl
	r := &c.r
	r.Method = p.method
	r.Proto = p.proto
	r.ProtoMajor, r.ProtoMinor = 1, p.minor
	r.Header = p.header
	r.Host = p.host
	r.RequestURI = p.target
	r.RemoteAddr = c.remote
	r.Close = p.close
	r.Trailer = p.trailer
	if p.url != nil {
		r.URL = p.url
	} else {
		c.u = url.URL{}
		c.u.Path, c.u.RawQuery, _ = strings.Cut(p.target, "?")
		r.URL = &c.u
	}
	c.closeAfter = false
	c.continueDone = p.minor == 0 || !p.expectContinue
	var b *body
	if p.chunked || p.contentLength > 0 {
		b = &body{}
		b.c, b.br = c, c.br
		b.remaining, b.chunked = p.contentLength, p.chunked
		if p.chunked {
			b.remaining = 0
			r.TransferEncoding = chunkedTE
		}
		b.trailer = &r.Trailer
		b.expect = !c.continueDone
		b.onEOF = c.armBackgroundRead
		r.Body = b
		r.ContentLength = p.contentLength
	} else {
		r.Body = http.NoBody
	}
	if b == nil {
		c.armBackgroundRead()
	}
	w := &c.w
	w.reset(c, p.minor, p.method == http.MethodHead)

	aborted := c.runHandler(w, r)
	c.stopBackgroundRead()
	if c.hijacked {
		return false
	}
	if b != nil {
		// What the handler left of the body is drained within
		// drainTimeout; a goroutine still reading it (an upstream
		// writer) is cut off by the same deadline.
		deadline := false
		if !b.mu.TryLock() {
			deadline = true
			_ = c.nc.SetReadDeadline(time.Now().Add(drainTimeout))
			b.mu.Lock()
		} else if !b.eof && b.err == nil {
			deadline = true
			_ = c.nc.SetReadDeadline(time.Now().Add(drainTimeout))
		}
		b.closeLocked()
		framing := b.framing
		b.mu.Unlock()
		if deadline {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		if aborted && framing && !w.headSent {
			c.reject(errBadChunk)
			return false
		}
	}
	if aborted {
		c.wmu.Lock()
		if w.headSent {
			// The client sees the response cut short.
			_ = c.bw.Flush()
		}
		c.wmu.Unlock()
		return false
	}
	w.finish()
	return !c.closeAfter
}

var chunkedTE = []string{"chunked"}

// runHandler calls the handler; aborted reports a panic, which ends the
// connection without finishing the response, as in net/http.
func (c *conn) runHandler(w *response, r *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			aborted = true
			if v != http.ErrAbortHandler && c.srv.Log != nil {
				c.srv.Log.Error("http handler panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}
	}()
	c.srv.Handler.ServeHTTP(w, r)
	return false
}

// writeContinue sends 100 Continue before the first read of a body whose
// client waits for it, unless the final response went first.
func (c *conn) writeContinue() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.continueDone {
		return
	}
	c.continueDone = true
	_, _ = c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	_ = c.bw.Flush()
}

// armBackgroundRead starts the watch for the client going away once the
// request was read whole (see bgReadDelay).
func (c *conn) armBackgroundRead() {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.bgState != bgOff || c.hijacked {
		return
	}
	c.bgState = bgArmed
	if c.bgTimer == nil {
		c.bgTimer = time.AfterFunc(bgReadDelay, c.backgroundRead)
		return
	}
	c.bgTimer.Reset(bgReadDelay)
}

// backgroundRead waits for the connection's next byte while a handler
// runs. An end of stream or error means the client went away: the
// request's context is canceled. A byte (a pipelined request) stays in
// the buffer for the next exchange.
func (c *conn) backgroundRead() {
	c.bgMu.Lock()
	if c.bgState != bgArmed {
		c.bgMu.Unlock()
		return
	}
	c.bgState = bgReading
	c.bgDone = make(chan struct{})
	c.bgMu.Unlock()
	_, err := c.br.Peek(1)
	c.bgMu.Lock()
	if err != nil && c.bgState == bgReading {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			c.cancel(errClientGone)
		}
	}
	close(c.bgDone)
	c.bgDone = nil
	c.bgState = bgOff
	c.bgMu.Unlock()
}

// stopBackgroundRead ends the watch: a pending timer is stopped, a read
// in progress is interrupted and waited for.
func (c *conn) stopBackgroundRead() {
	c.bgMu.Lock()
	switch c.bgState {
	case bgArmed:
		c.bgTimer.Stop()
		c.bgState = bgOff
		c.bgMu.Unlock()
	case bgReading:
		done := c.bgDone
		c.bgState = bgOff - 1 // interrupted: its error is ours, not the client's
		c.bgMu.Unlock()
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		<-done
		_ = c.nc.SetReadDeadline(time.Time{})
	default:
		c.bgMu.Unlock()
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// preface is the HTTP/2 prior-knowledge connection preface (RFC 9113
// section 3.4).
const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Sniff reads the start of a plaintext connection into br and reports
// whether it is the HTTP/2 preface, which net/http's server takes (see
// Replay). It reads no more than the client sent, so a short HTTP/1
// request is not waited on.
func Sniff(br *bufio.Reader) (h2 bool, err error) {
	want := 1
	for {
		b, err := br.Peek(want)
		if err != nil {
			if len(b) > 0 && err == io.EOF {
				return false, nil
			}
			return false, err
		}
		b, _ = br.Peek(br.Buffered())
		n := min(len(b), len(preface))
		if string(b[:n]) != preface[:n] {
			return false, nil
		}
		if n == len(preface) {
			return true, nil
		}
		want = n + 1
	}
}

// Replay returns nc reading first what br holds: how a sniffed
// connection goes on to another server.
func Replay(nc net.Conn, br *bufio.Reader) net.Conn {
	if br.Buffered() == 0 {
		return nc
	}
	return &replayConn{Conn: nc, br: br}
}

type replayConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes when the connection can.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
