package tcpproxy

import (
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/waygate/waygate/filters"
)

// maxUnread bounds what passed the read filters and waits for the
// connection's reader: past it the filters wait too, and so does the
// reading of the socket, as a socket's buffer would make them.
const maxUnread = 256 << 10

// startTimeout bounds how long a filter may hold the start of a
// connection to an HTTP connection manager.
const startTimeout = 60 * time.Second

// FilterConn runs the network filters of fs on conn for a terminal
// filter other than the proxy (the HTTP connection manager): what the
// peer sends passes the filters in order before Read returns it, what
// is written passes them in reverse order before it reaches the peer.
// It returns conn itself when fs is empty, and nil, with conn closed,
// when a filter refused the connection. Closing the returned conn ends
// the filters' connection. Deadlines work as on conn.
func FilterConn(conn net.Conn, info filters.Connection, fs []filters.NetworkFactory, log *slog.Logger) net.Conn {
	if len(fs) == 0 {
		return conn
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := &Config{log: log}
	s := newSession(cfg, conn, info)
	s.log = log.With("connection", s.id)
	s.ctx, s.cancel = contextBackground()
	c := &filteredConn{s: s, raw: conn}
	c.cond = sync.NewCond(&c.mu)
	s.onClose = c.wake
	ok := func() (ok bool) {
		defer s.recover()
		for _, f := range fs {
			h := &handle{s: s, i: len(s.filters)}
			if nf := f.NewNetworkFilter(h); nf != nil {
				s.filters = append(s.filters, nf)
			}
		}
		n := len(s.filters)
		s.ways[filters.SideDownstream] = newWay(s, filters.SideDownstream, n)
		s.ways[filters.SideUpstream] = newWay(s, filters.SideUpstream, n)
		s.ways[filters.SideDownstream].sink = c.deliver
		s.ways[filters.SideUpstream].sink = writeTo(conn)
		// The HTTP server's header timeout does not run yet: bound the
		// wait for a filter holding the start.
		return s.start(startTimeout)
	}()
	s.pumps.Add(1)
	go func() {
		<-s.done
		s.Close()
		s.pumps.Wait()
		s.finish()
		s.cancel()
	}()
	if !ok {
		s.pumps.Done()
		s.Close()
		return nil
	}
	go s.pump(s.ways[filters.SideDownstream], conn)
	return c
}

// filteredConn is the connection as the terminal filter sees it.
type filteredConn struct {
	s   *session
	raw net.Conn

	mu       sync.Mutex
	cond     *sync.Cond
	out      []byte // what passed the read filters, not read yet
	eof      bool   // the peer's end of stream passed them too
	closed   bool
	deadline time.Time // of Read
	timer    *time.Timer
}

// deliver is the read way's sink.
func (c *filteredConn) deliver(data []byte, end bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, data...)
	c.eof = c.eof || end
	c.cond.Broadcast()
	for len(c.out) > maxUnread && !c.closed {
		c.cond.Wait()
	}
	if c.closed {
		return net.ErrClosed
	}
	return nil
}

func (c *filteredConn) wake() {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *filteredConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.out) == 0 {
		switch {
		case c.closed:
			return 0, net.ErrClosed
		case c.eof:
			return 0, io.EOF
		case !c.deadline.IsZero() && !time.Now().Before(c.deadline):
			return 0, os.ErrDeadlineExceeded
		}
		c.cond.Wait()
	}
	n := copy(p, c.out)
	c.out = c.out[:copy(c.out, c.out[n:])]
	c.cond.Broadcast()
	return n, nil
}

// Write passes p through the write filters; what they hold counts as
// written.
func (c *filteredConn) Write(p []byte) (int, error) {
	if !c.s.ways[filters.SideUpstream].push(p) {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

// CloseWrite passes the end of what is written through the filters.
func (c *filteredConn) CloseWrite() error {
	c.s.ways[filters.SideUpstream].endStream()
	return nil
}

func (c *filteredConn) Close() error {
	c.s.Close()
	return nil
}

func (c *filteredConn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *filteredConn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

func (c *filteredConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.raw.SetWriteDeadline(t)
}

// SetReadDeadline bounds Read, which waits for the filters rather than
// for the socket.
func (c *filteredConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !t.IsZero() {
		c.timer = time.AfterFunc(time.Until(t), func() {
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
		})
	}
	c.cond.Broadcast()
	return nil
}

func (c *filteredConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }
