package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/http1"
	"github.com/waygate/waygate/gateway/tcpproxy"
)

// Manager owns the listening sockets. Apply reconciles them with a new
// set of compiled listeners: unchanged listeners keep their sockets and
// connections, changed ones keep the socket and serve new connections
// with the new config, removed ones stop accepting and drain.
type Manager struct {
	// Views returns the current snapshot's view.
	Views func() hcm.View
	// Log receives listener events.
	Log *slog.Logger
	// DrainTimeout bounds how long removed listeners wait for their
	// connections (Envoy's --drain-time-s, 600s by default; Istio uses 45s).
	DrainTimeout time.Duration
	// InspectTimeout bounds reading the start of a connection for
	// listeners that do not set listener_filters_timeout (15s by
	// default, as Envoy's).
	InspectTimeout time.Duration
	// Handler serves HTTP requests; its Views must be set.
	Handler *hcm.Handler

	mu      sync.Mutex
	sockets map[string]*socket
	closed  bool
}

// socket is one bound listener.
type socket struct {
	m    *Manager
	name string
	ln   net.Listener
	cur  atomic.Pointer[Listener]
	srv  *http.Server
	// h1 serves plaintext HTTP/1.x connections (see serveHTTP1).
	h1    *http1.Server
	conns *connQueue
	http  sync.Map // net.Conn -> *hcm.Conn
	ctx   context.Context
	stop  context.CancelFunc

	// live holds every accepted connection until it closes, whoever
	// holds it then: the HTTP server, the TCP proxy, or a handler that
	// hijacked it for an upgrade, which the HTTP server forgets.
	mu      sync.Mutex
	live    map[*trackedConn]struct{}
	emptied chan struct{} // closed when live empties during shutdown
}

// trackedConn removes itself from its socket's live set when closed.
type trackedConn struct {
	net.Conn
	s    *socket
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.s.forget(c) })
	return c.Conn.Close()
}

// CloseWrite half-closes, so the TCP proxy can pass a FIN along.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (s *socket) track(c net.Conn) *trackedConn {
	tc := &trackedConn{Conn: c, s: s}
	s.mu.Lock()
	s.live[tc] = struct{}{}
	s.mu.Unlock()
	return tc
}

func (s *socket) forget(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, c)
	if len(s.live) == 0 && s.emptied != nil {
		close(s.emptied)
		s.emptied = nil
	}
}

// Apply makes the bound sockets match ls. New sockets are bound before
// anything changes, so a bind failure leaves every listener as it was and
// is returned (the update is NACKed).
func (m *Manager) Apply(ls map[string]*Listener) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("listener manager is closed")
	}
	if m.sockets == nil {
		m.sockets = map[string]*socket{}
	}
	names := make([]string, 0, len(ls))
	bound := make(map[string]*Listener, len(ls))
	for n, l := range ls {
		// bind_to_port false listeners only take connections other
		// listeners hand over, which a gateway does not do.
		if l.NoBind {
			continue
		}
		names = append(names, n)
		bound[n] = l
	}
	sort.Strings(names)
	ls = bound

	fresh := map[string]*socket{}
	for _, n := range names {
		l := ls[n]
		if old := m.sockets[n]; old != nil && old.cur.Load().Address == l.Address {
			continue
		}
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			for _, s := range fresh {
				s.ln.Close()
			}
			return fmt.Errorf("listener %q: bind %s: %w", n, l.Address, err)
		}
		fresh[n] = m.newSocket(n, ln)
	}
	// Swap configs and start the fresh sockets.
	for _, n := range names {
		l := ls[n]
		if s := fresh[n]; s != nil {
			if old := m.sockets[n]; old != nil {
				go old.drain(m.drainTimeout())
			}
			s.cur.Store(l)
			m.sockets[n] = s
			go s.serve()
			m.log().Info("listener added", "listener", n, "address", s.ln.Addr().String())
			continue
		}
		s := m.sockets[n]
		switch prev := s.cur.Load(); {
		case prev.key != l.key:
			s.cur.Store(l)
			prev.markDraining()
			m.log().Info("listener updated", "listener", n)
		case prev.secretsKey != l.secretsKey:
			s.cur.Store(l)
			m.log().Info("listener secrets rotated", "listener", n)
		}
	}
	for n, s := range m.sockets {
		if _, keep := ls[n]; !keep {
			delete(m.sockets, n)
			m.log().Info("listener removed, draining", "listener", n)
			go s.drain(m.drainTimeout())
		}
	}
	return nil
}

// Addr returns the bound address of the named listener ("" if none):
// the real port when the config asked for port 0.
func (m *Manager) Addr(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sockets[name]; s != nil {
		return s.ln.Addr().String()
	}
	return ""
}

// Drain stops accepting on every listener and waits, up to ctx, for
// connections to finish. Keep-alive connections are closed once idle.
func (m *Manager) Drain(ctx context.Context) {
	m.mu.Lock()
	socks := m.sockets
	m.sockets = nil
	m.closed = true
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.shutdown(ctx)
		}()
	}
	wg.Wait()
}

// handshakeTimeout bounds TLS handshakes of chains that set no
// transport_socket_connect_timeout, as the HTTP server's header timeout
// does for its connections.
const handshakeTimeout = 60 * time.Second

func (m *Manager) drainTimeout() time.Duration {
	if m.DrainTimeout > 0 {
		return m.DrainTimeout
	}
	return 45 * time.Second
}

func (m *Manager) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (m *Manager) newSocket(name string, ln net.Listener) *socket {
	s := &socket{m: m, name: name, ln: ln, conns: newConnQueue(ln.Addr()), live: map[*trackedConn]struct{}{}}
	s.ctx, s.stop = context.WithCancel(context.Background())
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	s.srv = &http.Server{
		Handler:           m.Handler,
		Protocols:         p,
		ReadHeaderTimeout: 60 * time.Second,
		IdleTimeout:       time.Hour,
		MaxHeaderBytes:    60 << 10,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 1000},
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if v, ok := s.http.Load(c); ok {
				return hcm.WithConn(ctx, v.(*hcm.Conn))
			}
			return ctx
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				s.http.Delete(c)
			}
		},
	}
	if http1.Enabled() {
		s.h1 = &http1.Server{
			Handler:           m.Handler,
			MaxHeaderBytes:    s.srv.MaxHeaderBytes,
			ReadHeaderTimeout: s.srv.ReadHeaderTimeout,
			IdleTimeout:       s.srv.IdleTimeout,
			Log:               m.log(),
		}
	}
	return s
}

func (s *socket) serve() {
	go func() { _ = s.srv.Serve(s.conns) }()
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go s.handle(c)
	}
}

// handle picks the filter chain for a new connection and hands it over.
func (s *socket) handle(raw net.Conn) {
	c := s.track(raw)
	// A bug met by one connection ends that connection, not the
	// process and every other connection with it.
	defer func() {
		if v := recover(); v != nil {
			s.m.log().Error("connection handler panic", "listener", s.name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			c.Close()
		}
	}()
	l := s.cur.Load()
	f := connFacts{dst: addrPort(c.LocalAddr()), src: addrPort(c.RemoteAddr())}
	f.direct = f.src.Addr()
	var conn net.Conn = c
	timeout := l.inspectTimeout
	if timeout < 0 {
		timeout = s.m.InspectTimeout
		if timeout <= 0 {
			timeout = 15 * time.Second
		}
	}
	// One deadline covers every listener filter, as Envoy's one timer
	// does; a timeout of 0 is none.
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if l.proxyProtocol != nil {
		var err error
		if conn, err = l.proxyProtocol.read(c, &f, deadline); err != nil {
			s.m.log().Debug("connection refused", "listener", l.Name, "source", f.direct.String(), "error", err.Error())
			c.Close()
			return
		}
	}
	if l.inspect {
		var err error
		opts := inspection{continueOnTimeout: l.continueOnTimeout, sniffHTTP: l.sniffHTTP}
		if !deadline.IsZero() {
			opts.timeout = max(time.Until(deadline), time.Millisecond)
		}
		if conn, err = inspect(conn, &f, opts); err != nil {
			c.Close()
			return
		}
	}
	ch := selectChain(l.chains, &f)
	if ch == nil {
		ch = l.defaultChain
	}
	if ch == nil {
		s.m.log().Debug("no filter chain matched", "listener", l.Name, "sni", f.sni, "source", f.src.String())
		c.Close()
		return
	}
	if ch.tls != nil {
		if f.transport != "tls" {
			c.Close()
			return
		}
		tc := tls.Server(conn, ch.tls)
		conn = tc
		// The HTTP server bounds handshakes by its header timeout; the
		// TCP proxy has none, and a chain may ask for a shorter bound
		// (transport_socket_connect_timeout). Network filters see the
		// plaintext, so the handshake is done before them.
		if ch.tcp != nil || ch.handshakeTimeout > 0 || len(ch.network) > 0 {
			d := ch.handshakeTimeout
			if d <= 0 {
				d = handshakeTimeout
			}
			ctx, cancel := context.WithTimeout(s.ctx, d)
			err := tc.HandshakeContext(ctx)
			cancel()
			if err != nil {
				tc.Close()
				return
			}
		}
	}
	info := filters.Connection{
		RemoteAddr: f.src, LocalAddr: f.dst, ID: filters.NewConnectionID(),
		Listener: l.Name, FilterChain: ch.name, RequestedServerName: f.sni,
		ListenerMetadata: l.Proto.GetMetadata(), ListenerDirection: l.Proto.GetTrafficDirection(),
		LocalURISANs: ch.localURIs,
		SourceAddr:   f.src, DirectRemoteAddr: addrPort(c.RemoteAddr()),
	}

	if tc, ok := conn.(*tls.Conn); ok && tc.ConnectionState().HandshakeComplete {
		st := tc.ConnectionState()
		info.TLS = &st
	}
	switch {
	case ch.tcp != nil:
		var view hcm.View
		if s.m.Views != nil {
			view = s.m.Views()
		}
		ch.tcp.ServeFiltered(s.ctx, conn, view, info, ch.network)
	case ch.http != nil:
		plaintext := ch.tls == nil
		if len(ch.network) > 0 {
			// The connection manager reads and writes through the
			// chain's network filters, which hide the TLS connection:
			// the HTTP servers take it for plaintext (h2 by its
			// preface, as ALPN chose), and the request learns of TLS
			// from info.
			if conn = tcpproxy.FilterConn(conn, info, ch.network, s.m.log().With("listener", l.Name)); conn == nil {
				return
			}
			plaintext = true
		}
		hc := &hcm.Conn{Config: ch.http, Info: info}
		if s.h1 != nil && plaintext {
			if conn = s.serveHTTP1(conn, hc); conn == nil {
				return
			}
		}
		s.http.Store(conn, hc)
		if !s.conns.push(conn) {
			s.http.Delete(conn)
			conn.Close()
		}
	}
}

// serveHTTP1 serves a plaintext HTTP connection with the HTTP/1.1 codec
// unless it opens with the HTTP/2 preface: then it returns the
// connection, replaying what was read, for net/http's server, which
// speaks HTTP/2. It returns nil once it served the connection.
func (s *socket) serveHTTP1(conn net.Conn, hc *hcm.Conn) net.Conn {
	br := bufio.NewReaderSize(conn, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(s.srv.ReadHeaderTimeout))
	h2, err := http1.Sniff(br)
	if err != nil {
		conn.Close()
		return nil
	}
	_ = conn.SetReadDeadline(time.Time{})
	if h2 {
		return http1.Replay(conn, br)
	}
	s.h1.ServeConn(hcm.WithConn(context.Background(), hc), conn, br)
	return nil
}

// drain stops accepting and lets connections finish for up to timeout.
func (s *socket) drain(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.shutdown(ctx)
}

func (s *socket) shutdown(ctx context.Context) {
	s.ln.Close()
	s.conns.close()
	if s.h1 != nil {
		s.h1.Shutdown()
	}
	_ = s.srv.Shutdown(ctx)
	// TCP proxy and upgraded connections finish on their own, or are
	// closed when the drain time is over, as Envoy closes them.
	for {
		s.mu.Lock()
		if len(s.live) == 0 {
			s.mu.Unlock()
			break
		}
		emptied := make(chan struct{})
		s.emptied = emptied
		s.mu.Unlock()
		select {
		case <-emptied:
			continue
		case <-ctx.Done():
		}
		break
	}
	s.stop()
	_ = s.srv.Close()
	if s.h1 != nil {
		s.h1.Close()
	}
	s.mu.Lock()
	left := make([]*trackedConn, 0, len(s.live))
	for c := range s.live {
		left = append(left, c)
	}
	s.mu.Unlock()
	for _, c := range left {
		c.Close()
	}
}

// markDraining tells the listener's HTTP configs that newer ones replaced
// them, so their connections close after the current request.
func (l *Listener) markDraining() {
	for _, c := range append(append([]*chain(nil), l.chains...), l.defaultChain) {
		if c != nil && c.http != nil {
			c.http.Drain()
		}
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// connQueue is the net.Listener the HTTP server accepts from: the socket
// pushes connections whose chain is HTTP.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) close()         { q.closed.Do(func() { close(q.done) }) }
func (q *connQueue) Close() error   { q.close(); return nil }
func (q *connQueue) Addr() net.Addr { return q.addr }
