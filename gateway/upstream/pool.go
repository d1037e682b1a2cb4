package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/waygate/waygate/gateway/http1"
)

// connPool is one host's HTTP/1.1 connections, pooled as Envoy's
// HTTP/1.1 connection pool does: a request takes an idle connection, or
// opens one within the cluster's max_connections, or waits as a pending
// request within max_pending_requests; a connection is closed after
// max_requests_per_connection requests.
//
// It is our own rather than net/http's Transport because the Transport
// can neither count pending requests against a cluster-wide limit nor
// close a connection after exactly N requests. Requests are written and
// responses read by the pool's own codec (see codec.go), over pooled
// connections with bufio buffers.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/connection_pooling
type connPool struct {
	addr string
	host *host
	b    *breakers
	s    poolSettings
	st   *ClusterStats
	dial dialFunc

	mu      sync.Mutex
	idle    []*conn
	open    int // connections open or being dialed
	waiters []chan grant
	closed  bool
}

// grant hands a pending request either an idle connection or the
// right to dial one (a connection slot already counted for it).
type grant struct {
	c    *conn
	dial bool
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

func newConnPool(addr string, b *breakers, s poolSettings, st *ClusterStats, dial dialFunc) *connPool {
	p := &connPool{addr: addr, b: b, s: s, st: st, dial: dial}
	if dial == nil {
		p.dial = (&net.Dialer{Timeout: s.connectTimeout, KeepAliveConfig: s.keepAlive}).DialContext
	} else {
		p.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, s.connectTimeout)
			defer cancel()
			return dial(ctx, network, addr)
		}
	}
	return p
}

// get returns a connection for one request, waiting for one until ctx
// ends or the deadline (zero for none) passes.
func (p *connPool) get(ctx context.Context, deadline time.Time) (*conn, error) {
	now := time.Now()
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		if !c.deadline.IsZero() && !now.Before(c.deadline) {
			// The last request's deadline passed: the liveness check
			// below would take it for a failure.
			_ = c.nc.SetReadDeadline(time.Time{})
			c.deadline = time.Time{}
		}
		if idle := now.Sub(c.idleSince); idle < p.s.idleTimeout && (idle < freshIdle && c.br.Buffered() == 0 || c.alive()) {
			p.mu.Unlock()
			return c, nil
		}
		p.closeLocked(c)
	}
	if p.closed {
		p.mu.Unlock()
		return nil, errPoolClosed
	}
	// Like Envoy, a request waiting for a connection — even one being
	// dialed for it — is pending, and counts against
	// max_pending_requests.
	lim := p.b.limits.Load()
	if !acquire(&p.b.pending, lim.maxPending) {
		p.mu.Unlock()
		p.st.Count(RqPendingOverflow)
		return nil, ErrOverflow
	}
	defer p.b.pending.Add(-1)
	if acquire(&p.b.connections, lim.maxConnections) {
		p.open++
		p.mu.Unlock()
		return p.connect(ctx, deadline)
	}
	p.st.Count(CxOverflow)
	if p.open == 0 {
		// Other hosts hold every connection the cluster may have; a
		// host with none still gets one, or its pending requests
		// would have nothing to wait for.
		p.b.connections.Add(1)
		p.open++
		p.mu.Unlock()
		return p.connect(ctx, deadline)
	}
	ch := make(chan grant, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	var err error
	select {
	case g := <-ch:
		if g.dial {
			return p.connect(ctx, deadline)
		}
		return g.c, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-expired:
		err = context.DeadlineExceeded
	}
	p.mu.Lock()
	removed := false
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			removed = true
			break
		}
	}
	p.mu.Unlock()
	if !removed {
		// A grant raced the cancellation: pass it on.
		if g := <-ch; g.c != nil {
			p.put(g.c, true)
		} else {
			p.mu.Lock()
			p.dropSlotLocked()
			p.mu.Unlock()
		}
	}
	return nil, err
}

var errPoolClosed = errors.New("connection pool closed")

// freshIdle is how long a connection may have been idle and still be
// taken without asking the kernel whether the server closed it: a
// server's idle timeout is seconds, not milliseconds, and a server that
// closes after a response says so (Connection: close). Under load the
// pool hands out the connection returned last, idle for microseconds,
// and the check would be one system call per request. A request without
// a body that still meets a closed connection is sent once more.
const freshIdle = 5 * time.Millisecond

// connect dials for a slot already counted in p.open and connections.
func (p *connPool) connect(ctx context.Context, deadline time.Time) (*conn, error) {
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	nc, err := p.dial(ctx, "tcp", p.addr)
	if err != nil {
		p.mu.Lock()
		p.dropSlotLocked()
		p.mu.Unlock()
		return nil, err
	}
	p.st.Count(CxTotal)
	return newConn(p, nc), nil
}

// put returns a connection after a request. A connection that may not
// serve another request is closed, and its slot goes to the next
// pending request.
func (p *connPool) put(c *conn, reusable bool) {
	p.mu.Lock()
	if !reusable || p.closed || (p.s.maxRequests > 0 && c.served >= p.s.maxRequests) {
		p.closeLocked(c)
		p.mu.Unlock()
		return
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- grant{c: c}
		return
	}
	c.idleSince = time.Now()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *connPool) closeLocked(c *conn) {
	c.nc.Close()
	p.dropSlotLocked()
}

// dropSlotLocked gives up one connection slot and lets the first
// pending request dial in its place when the cluster allows it.
func (p *connPool) dropSlotLocked() {
	p.open--
	p.b.connections.Add(-1)
	if len(p.waiters) == 0 {
		return
	}
	switch {
	case acquire(&p.b.connections, p.b.limits.Load().maxConnections):
	case p.open == 0:
		p.b.connections.Add(1)
	default:
		return
	}
	w := p.waiters[0]
	p.waiters = p.waiters[1:]
	p.open++
	w <- grant{dial: true}
}

// closeIdle closes idle connections; with final set, the pool closes
// every connection as its request ends.
func (p *connPool) closeIdle(final bool) {
	p.mu.Lock()
	for _, c := range p.idle {
		p.closeLocked(c)
	}
	p.idle = nil
	if final {
		p.closed = true
	}
	p.mu.Unlock()
}

// roundTrip sends req over a pooled connection. A request without a
// body that failed on a reused connection before any response byte
// arrived is sent once more: the server closed the connection while it
// sat idle.
func (p *connPool) roundTrip(ctx context.Context, req *http.Request, deadline time.Time) (*http.Response, error) {
	for try := 0; ; try++ {
		c, err := p.get(ctx, deadline)
		if err != nil {
			return nil, err
		}
		reused := c.served > 0
		resp, err := c.roundTrip(ctx, req, deadline)
		if err == nil {
			return resp, nil
		}
		replayable := req.Body == nil || req.Body == http.NoBody
		if !reused || !replayable || try > 0 || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || !isStaleConn(err) {
			return nil, err
		}
	}
}

func isStaleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		isConnReset(err)
}

// conn is one pooled HTTP/1.1 connection.
type conn struct {
	p         *connPool
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	served    uint32
	idleSince time.Time
	// deadline is the read deadline set on nc (see roundTrip).
	deadline time.Time
	peek     peeker
	// abort unblocks the connection's reads and writes when a request's
	// context ends; made once, it costs requests no allocation. watch
	// runs it for a downstream HTTP/1.1 context, unwatch stops it.
	abort   func()
	watch   http1.Watch
	unwatch func() bool
}

func newConn(p *connPool, nc net.Conn) *conn {
	c := &conn{p: p, nc: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}
	c.peek = newPeeker(nc)
	c.abort = func() { _ = c.nc.SetDeadline(aLongTimeAgo) }
	c.watch.F = c.abort
	c.unwatch = c.watch.Stop
	return c
}

// alive says whether an idle connection can be reused: the peer has
// not closed it and sent nothing unasked.
func (c *conn) alive() bool { return c.br.Buffered() == 0 && c.peek.alive() }

// roundTrip writes req and reads the response head. The connection
// goes back to the pool when the response body is read to its end or
// closed.
func (c *conn) roundTrip(ctx context.Context, req *http.Request, deadline time.Time) (*http.Response, error) {
	c.served++
	stop := notWatched
	if ctx.Done() != nil {
		// Cancellation (downstream gone, stream idle) unblocks any
		// read or write on the connection, which then is not reused.
		// An HTTP/1.1 downstream's context is watched without
		// allocating (see http1.Watch).
		if c.watch.Start(ctx) {
			stop = c.unwatch
		} else {
			stop = context.AfterFunc(ctx, c.abort)
		}
	}
	if deadline != c.deadline {
		// The deadline bounds the response head and body; the
		// request's writes end with it too, as the connection is
		// then closed. It is left in place after the exchange: the
		// next request moves it, one timer update instead of two.
		_ = c.nc.SetReadDeadline(deadline)
		c.deadline = deadline
	}
	var wrote chan error
	if req.Body == nil || req.Body == http.NoBody {
		err := writeRequest(c.bw, req)
		if err == nil {
			err = c.bw.Flush()
		}
		if err != nil {
			stop()
			c.p.put(c, false)
			return nil, err
		}
	} else {
		// The head is written here: the header map may be the
		// downstream connection's, reused once this exchange is over,
		// which the body's writer may outlive (see releaseAfterWrite).
		own := ownCodec() && plainRequest(req)
		wreq := req
		var cl int64
		if own {
			var err error
			if cl, err = writeRequestHead(c.bw, req); err != nil {
				stop()
				req.Body.Close()
				c.p.put(c, false)
				return nil, err
			}
		} else {
			r := *req
			r.Header = req.Header.Clone()
			wreq = &r
		}
		// The body streams while the response may already come back
		// (an early 413, a server that does not read it).
		wrote = make(chan error, 1)
		go func() {
			var err error
			if own {
				err = writeRequestBody(c.bw, wreq, cl)
			} else {
				err = wreq.Write(c.bw)
			}
			if err == nil {
				err = c.bw.Flush()
			}
			wrote <- err
		}()
	}
	b := &body{c: c, stop: stop, wrote: wrote, ctx: ctx, deadline: !deadline.IsZero()}
	resp, err := readResponse(c.br, req, &b.fr)
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = readResponse(c.br, req, &b.fr)
	}
	if err != nil {
		stop()
		err = b.reason(err)
		c.nc.Close()
		c.releaseAfterWrite(wrote, false)
		return nil, err
	}
	b.rc, b.closeAfter = resp.Body, resp.Close
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

var aLongTimeAgo = time.Unix(1, 0)

// notWatched is the stop function of a request whose context cannot
// end.
func notWatched() bool { return true }

// body is a pooled response body: its end returns the connection and
// ends the request's accounting.
type body struct {
	c          *conn
	rc         io.ReadCloser
	stop       func() bool
	wrote      chan error
	closeAfter bool
	mu         sync.Mutex
	done       bool
	// fr frames the response body, when the pool's codec read it.
	fr framed
	// ctx and deadline say why a read failed: see reason.
	ctx      context.Context
	deadline bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		err = b.reason(err)
	}
	return n, err
}

// reason reports a read or write that failed because the request's
// context ended (which aborts the connection) or its deadline passed as
// that context's error or context.DeadlineExceeded.
func (b *body) reason(err error) error {
	if e := b.ctx.Err(); e != nil {
		return e
	}
	var ne net.Error
	if b.deadline && errors.As(err, &ne) && ne.Timeout() {
		return context.DeadlineExceeded
	}
	return err
}

func (b *body) Close() error {
	b.finish(false)
	return nil
}

// finish releases the connection once: reusable only when the body was
// read to its end, the request body was fully written, and neither
// side asked to close.
func (b *body) finish(clean bool) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return
	}
	b.done = true
	b.mu.Unlock()
	c := b.c
	reusable := clean && !b.closeAfter && b.stop()
	if !clean {
		b.stop()
		c.nc.Close()
	}
	if reusable && c.br.Buffered() > 0 {
		reusable = false
	}
	c.releaseAfterWrite(b.wrote, reusable)
	c.p.host.requestDone(c.p.b)
}

// releaseAfterWrite returns the connection once the request body
// writer, if any, is done. A writer still at work means the server
// answered before reading the whole body: the connection cannot carry
// another request. The writer may be blocked reading the downstream
// body rather than on the closed connection, so nobody waits for it:
// it returns the connection itself when it ends.
func (c *conn) releaseAfterWrite(wrote chan error, reusable bool) {
	if wrote == nil {
		c.p.put(c, reusable)
		return
	}
	select {
	case err := <-wrote:
		c.p.put(c, reusable && err == nil)
	default:
		c.nc.Close()
		go func() {
			<-wrote
			c.p.put(c, false)
		}()
	}
}
