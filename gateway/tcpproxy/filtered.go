package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/upstream"
)

// HeldLimit bounds the bytes network filters may hold on one side of a
// connection (Envoy's per_connection_buffer_limit_bytes, 1 MiB by
// default). Envoy stops reading past it; a filter that keeps holding
// would then wait for data that cannot come, so here the connection is
// closed instead.
const HeldLimit = 1 << 20

// ServeFiltered proxies down like Serve, through the network filters
// of fs: data from the downstream passes them in order, data from the
// upstream in reverse order, as Envoy runs read and write filters. It
// owns down. A panic in a filter closes this connection only.
func (c *Config) ServeFiltered(ctx context.Context, down net.Conn, set upstream.Set, info filters.Connection, fs []filters.NetworkFactory) {
	if len(fs) == 0 {
		c.serve(ctx, down, set, c.clusterFor(info))
		return
	}
	s := newSession(c, down, info)
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	s.log = c.log.With("connection", s.id)
	defer down.Close()
	defer s.recover()
	// Every filter made is told the connection ended, even when making
	// the next one panics.
	defer s.finish()
	for _, f := range fs {
		h := &handle{s: s, i: len(s.filters)}
		if nf := f.NewNetworkFilter(h); nf != nil {
			s.filters = append(s.filters, nf)
		}
	}
	n := len(s.filters)
	s.ways[filters.SideDownstream] = newWay(s, filters.SideDownstream, n)
	s.ways[filters.SideUpstream] = newWay(s, filters.SideUpstream, n)
	if !s.start(c.idleTimeout) {
		return
	}
	up, cluster := c.connect(s.ctx, set, c.clusterFor(info))
	if up == nil {
		return
	}
	s.mu.Lock()
	s.up = up
	s.upInfo = filters.UpstreamConn{Cluster: cluster, RemoteAddr: addrPort(up.RemoteAddr()), LocalAddr: addrPort(up.LocalAddr())}
	closed := s.closed.Load()
	s.mu.Unlock()
	if closed {
		// Closed by a filter while connecting.
		up.Close()
		return
	}
	// The listener cancels ctx when its drain time is over.
	stop := context.AfterFunc(ctx, s.Close)
	defer stop()
	s.ways[filters.SideDownstream].sink = writeTo(up)
	s.ways[filters.SideUpstream].sink = writeTo(down)
	s.last.Store(time.Now().UnixNano())
	s.pumps.Add(2)
	go s.pump(s.ways[filters.SideDownstream], down)
	go s.pump(s.ways[filters.SideUpstream], up)
	<-s.done
	s.Close()
	s.pumps.Wait()
}

func newSession(c *Config, down net.Conn, info filters.Connection) *session {
	id := info.ID
	if id == 0 {
		id = filters.NewConnectionID()
	}
	return &session{cfg: c, down: down, info: info, id: id, done: make(chan struct{}), resumeStart: make(chan int, 1)}
}

// start runs the filters' OnNewConnection in order. A filter that
// returns StopAndBuffer holds the next ones, and the upstream, until it
// calls Continue for the downstream side, as Envoy's StopIteration
// from onNewConnection waits for continueReading; idle bounds the wait
// when above 0. It returns false when the connection is to close.
func (s *session) start(idle time.Duration) bool {
	defer s.started.Store(true)
	for i, f := range s.filters {
		switch f.OnNewConnection() {
		case filters.Stop:
			return false
		case filters.StopAndBuffer:
			if !s.waitStart(i, idle) {
				return false
			}
		}
		if s.closed.Load() {
			return false
		}
	}
	return true
}

// waitStart waits for filter i to continue the connection's start.
func (s *session) waitStart(i int, idle time.Duration) bool {
	var timeout <-chan time.Time
	if idle > 0 {
		t := time.NewTimer(idle)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case j := <-s.resumeStart:
			if j == i {
				return true
			}
		case <-s.done:
			return false
		case <-s.ctx.Done():
			return false
		case <-timeout:
			s.log.Debug("tcp proxy: idle timeout waiting for a network filter to continue")
			return false
		}
	}
}

// session is one connection through network filters.
type session struct {
	cfg    *Config
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	id     uint64
	info   filters.Connection

	down net.Conn
	// up and upInfo are set once the upstream answered.
	mu     sync.Mutex
	up     net.Conn
	upInfo filters.UpstreamConn

	filters []filters.NetworkFilter
	ways    [2]*way

	closed   atomic.Bool
	doneOnce sync.Once
	done     chan struct{} // both ways ended, or the connection was closed
	ended    atomic.Int32  // ways whose end of stream reached the other side
	// byPeer records, per side, that its peer closed or half-closed
	// before the gateway closed the connection.
	byPeer [2]atomic.Bool
	last   atomic.Int64 // unix nanoseconds of the last read either way
	pumps  sync.WaitGroup
	// onClose, if set, is called once when the connection closes.
	onClose func()
	// started is set once every filter's OnNewConnection let the
	// connection go on; until then a filter's Continue for the
	// downstream side goes to resumeStart, with the filter's index.
	started     atomic.Bool
	resumeStart chan int
}

// Close ends the connection both ways. It never blocks.
func (s *session) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.down.Close()
	s.mu.Lock()
	if s.up != nil {
		s.up.Close()
	}
	s.mu.Unlock()
	if s.onClose != nil {
		s.onClose()
	}
	s.signalDone()
}

func contextBackground() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func (s *session) signalDone() { s.doneOnce.Do(func() { close(s.done) }) }

// recover turns a filter's panic into the end of this connection.
func (s *session) recover() {
	if v := recover(); v != nil {
		s.log.Error("network filter panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		s.Close()
	}
}

// finish tells every filter that the connection is over, once no
// callback of it can run any more.
func (s *session) finish() {
	defer s.recover()
	s.Close()
	for _, w := range s.ways {
		if w == nil {
			continue
		}
		// Wait for a Continue that is passing data on.
		w.mu.Lock()
		w.over = true
		w.mu.Unlock()
	}
	for _, f := range s.filters {
		f.OnClose(filters.SideDownstream, s.byPeer[filters.SideDownstream].Load())
		s.mu.Lock()
		connected := s.up != nil
		s.mu.Unlock()
		if connected {
			f.OnClose(filters.SideUpstream, s.byPeer[filters.SideUpstream].Load())
		}
		f.OnDone()
	}
}

// pump reads src and runs what it reads through w until src ends.
func (s *session) pump(w *way, src net.Conn) {
	defer s.pumps.Done()
	defer s.recover()
	idle := s.cfg.idleTimeout
	buf := make([]byte, 32<<10)
	if idle > 0 {
		_ = src.SetReadDeadline(time.Now().Add(idle))
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Now()
			s.last.Store(now.UnixNano())
			if idle > 0 {
				_ = src.SetReadDeadline(now.Add(idle))
			}
			if !w.push(buf[:n]) {
				return
			}
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if idle > 0 && errors.As(err, &ne) && ne.Timeout() {
			if at := time.Unix(0, s.last.Load()).Add(idle); time.Now().Before(at) {
				_ = src.SetReadDeadline(at)
				continue
			}
			s.log.Debug("tcp proxy: idle timeout")
			s.Close()
			return
		}
		if !s.closed.Load() {
			s.byPeer[w.side].Store(true)
			w.endStream()
		}
		return
	}
}

// way is one direction of a session: data read from side passes the
// filters (in order from the downstream, reversed from the upstream)
// and goes to sink.
type way struct {
	s    *session
	side filters.Side
	// sink takes what passed every filter, and the end of stream.
	sink func(data []byte, end bool) error

	// mu serializes the filters' calls for this way and sink: the
	// way's own reads and Continue calls take turns.
	mu    sync.Mutex
	order []int             // filter indices, in the order data meets them
	held  []*filters.Buffer // per stage, what its filter holds
	end   []bool            // per stage, the end of stream reached it
	gone  []bool            // per stage, the end of stream went past it
	over  bool              // the connection is finished: no more calls
}

func newWay(s *session, side filters.Side, n int) *way {
	w := &way{s: s, side: side, order: make([]int, n), held: make([]*filters.Buffer, n), end: make([]bool, n), gone: make([]bool, n)}
	for k := range n {
		w.order[k] = k
		if side == filters.SideUpstream {
			w.order[k] = n - 1 - k
		}
		w.held[k] = filters.NewBuffer(nil)
	}
	return w
}

// push runs data read from the side through the filters. It returns
// false once the connection is closed.
func (w *way) push(data []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.run(0, data, false, nil)
}

// endStream passes the side's half-close through the filters.
func (w *way) endStream() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.run(0, nil, true, nil)
}

// resume passes on what stage k held, without calling its filter again.
func (w *way) resume(k int) {
	defer w.s.recover()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone[k] || (w.held[k].Len() == 0 && !w.end[k]) {
		return
	}
	w.run(k+1, w.held[k].Bytes(), w.end[k], w.held[k])
}

// run passes data (with end of stream if end) to the stages from k on.
// src, if not nil, is the buffer data came from, emptied once its bytes
// have been taken. w.mu is held.
func (w *way) run(k int, data []byte, end bool, src *filters.Buffer) bool {
	if w.over || w.s.closed.Load() {
		return false
	}
	for ; k < len(w.order); k++ {
		b := w.held[k]
		b.Append(data)
		if src != nil {
			src.Set(src.Bytes()[:0])
		}
		if end {
			w.end[k] = true
		}
		if w.gone[k] || (b.Len() == 0 && !w.end[k]) {
			return true
		}
		st := w.s.filters[w.order[k]].OnData(w.side, b, w.end[k])
		if w.s.closed.Load() {
			return false
		}
		switch st {
		case filters.Stop:
			w.s.Close()
			return false
		case filters.StopAndBuffer:
			if w.heldBytes() > HeldLimit {
				w.s.log.Warn("network filter held more than the buffer limit; closing the connection", "side", w.side.String(), "limit", HeldLimit)
				w.s.Close()
				return false
			}
			return true
		}
		data, end, src = b.Bytes(), w.end[k], b
		if end {
			w.gone[k] = true
		}
	}
	if len(data) > 0 || end {
		if err := w.sink(data, end); err != nil {
			w.s.Close()
			return false
		}
	}
	if src != nil {
		src.Set(src.Bytes()[:0])
	}
	if end && w.s.ended.Add(1) == 2 {
		w.s.signalDone()
	}
	return true
}

// writeTo is the sink writing to c, half-closing it at the end.
func writeTo(c net.Conn) func([]byte, bool) error {
	return func(data []byte, end bool) error {
		if len(data) > 0 {
			if _, err := c.Write(data); err != nil {
				return err
			}
		}
		if end {
			halfClose(c)
		}
		return nil
	}
}

func (w *way) heldBytes() int {
	n := 0
	for _, b := range w.held {
		n += b.Len()
	}
	return n
}

func halfClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// handle is one filter's NetworkConn.
type handle struct {
	s *session
	i int // the filter's index in the chain
}

func (h *handle) Context() context.Context { return h.s.ctx }
func (h *handle) Info() filters.Connection { return h.s.info }
func (h *handle) ID() uint64               { return h.s.id }
func (h *handle) Log() *slog.Logger        { return h.s.log }
func (h *handle) Close()                   { h.s.Close() }

func (h *handle) Upstream() (filters.UpstreamConn, bool) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.s.upInfo, h.s.up != nil
}

// Continue passes on what the filter held, on a goroutine of its own:
// the caller may be inside one of the filter's callbacks, holding the
// way's turn.
func (h *handle) Continue(side filters.Side) {
	if side == filters.SideDownstream && !h.s.started.Load() {
		select {
		case h.s.resumeStart <- h.i:
		default:
		}
		return
	}
	w := h.s.ways[side]
	if w == nil || side > filters.SideUpstream {
		return
	}
	for k, i := range w.order {
		if i == h.i {
			go w.resume(k)
			return
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
