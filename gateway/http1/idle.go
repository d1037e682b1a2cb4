package http1

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// What an idle keep-alive connection costs. A connection busy with an
// exchange holds a 4 KiB read buffer, a 4 KiB write buffer and a
// goroutine whose stack grew to the handler's depth (8 KiB and more).
// Between exchanges it gives the write buffer back at once, and once it
// has been idle for parkAfterDefault it gives back the read buffer and its
// goroutine too: the goroutine exits, and a new one, whose stack is the
// smallest, waits for the next byte with a one-byte read and takes
// buffers again when it comes. A connection that waits a little between
// requests keeps both, so the busy path costs nothing more than a
// pooled buffer's Get and Put.
//
// Idle timeouts are enforced by a sweep of the server's connections
// every sweepEveryDefault rather than by a read deadline per request, which
// would cost two timer updates (each of which may wake the network
// poller) per exchange; they fire up to sweepEveryDefault late.
const (
	parkAfterDefault  = time.Second
	sweepEveryDefault = 500 * time.Millisecond
)

// parkAfter and sweepEvery are the constants above; tests shorten them.
var parkAfter, sweepEvery = durationVar(parkAfterDefault), durationVar(sweepEveryDefault)

func durationVar(d time.Duration) *atomic.Int64 {
	v := new(atomic.Int64)
	v.Store(int64(d))
	return v
}

// State of a connection, as the sweep sees it.
const (
	stateActive  int32 = iota // an exchange is under way
	stateIdle                 // waiting for a request on its own goroutine
	stateParking              // the sweep interrupted the idle wait to park it
	stateParked               // waiting for a request with no buffers
	stateClosed
)

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

const bufSize = 4096

// writer returns the connection's write buffer, taking one from the
// pool for a connection that gave its own back.
func (c *conn) writer() *bufio.Writer {
	if c.bw == nil {
		c.bw = writers.Get().(*bufio.Writer)
		c.bw.Reset(c.nc)
	}
	return c.bw
}

// releaseWriter gives the write buffer back between exchanges. A
// hijacked connection's buffers are the hijacker's.
func (c *conn) releaseWriter() {
	if c.bw == nil || c.hijacked || c.bw.Buffered() > 0 {
		return
	}
	c.bw.Reset(nil)
	writers.Put(c.bw)
	c.bw = nil
}

// releaseReader gives the read buffer back; it must hold nothing.
func (c *conn) releaseReader() {
	if c.br == nil || c.br.Buffered() > 0 || c.br.Size() != bufSize {
		c.br = nil
		return
	}
	c.br.Reset(nil)
	readers.Put(c.br)
	c.br = nil
}

// firstByte is what a parked connection reads from before its read
// buffer: the byte that woke it, then the connection.
type firstByte struct {
	nc      net.Conn
	b       [1]byte
	pending bool
}

func (f *firstByte) Read(p []byte) (int, error) {
	if f.pending && len(p) > 0 {
		f.pending = false
		p[0] = f.b[0]
		return 1, nil
	}
	return f.nc.Read(p)
}

// park hands the idle connection to a new goroutine with the smallest
// stack, without buffers, and lets the current goroutine end.
func (c *conn) park() {
	c.releaseReader()
	c.releaseWriter()
	// The exchange state and the header maps, which keep the room
	// their largest exchange needed, are made again on waking.
	c.header, c.exchangeState = nil, nil
	c.state.Store(stateParked)
	// Shutdown closes parked connections; one that began while this
	// connection was between idle and parked is seen here.
	if c.srv.closing.Load() && c.state.CompareAndSwap(stateParked, stateClosed) {
		c.end()
		return
	}
	go c.waitParked()
}

// waitParked waits for the next request of a parked connection, then
// serves the connection on.
func (c *conn) waitParked() {
	c.first.nc = c.nc
	n, err := c.nc.Read(c.first.b[:])
	if n == 0 || err != nil || !c.state.CompareAndSwap(stateParked, stateActive) {
		c.end()
		return
	}
	c.first.pending = true
	c.header = make(http.Header)
	c.newExchange()
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(&c.first)
	c.serve()
}

// track adds c to the connections the sweep looks at, starting the
// sweep with the first one.
func (s *Server) track(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	if !s.sweeping {
		s.sweeping = true
		go s.sweep()
	}
}

// sweep closes connections idle past IdleTimeout and parks those idle
// past parkAfter, every sweepEvery, while the server has connections.
func (s *Server) sweep() {
	t := time.NewTicker(time.Duration(sweepEvery.Load()))
	defer t.Stop()
	burst := 0 // connections parked by the last sweeps
	for range t.C {
		now := time.Now().UnixNano()
		s.mu.Lock()
		if len(s.conns) == 0 {
			s.sweeping = false
			s.mu.Unlock()
			return
		}
		parked := 0
		for c := range s.conns {
			st := c.state.Load()
			if st != stateIdle && st != stateParked {
				continue
			}
			idle := time.Duration(now - c.idleSince.Load())
			if s.IdleTimeout > 0 && idle >= s.IdleTimeout {
				if c.state.CompareAndSwap(st, stateClosed) {
					c.nc.Close()
				}
				continue
			}
			if st == stateIdle && idle >= time.Duration(parkAfter.Load()) {
				c.parkMu.Lock()
				if c.state.CompareAndSwap(stateIdle, stateParking) {
					// Interrupt the wait; see waitIdle.
					_ = c.nc.SetReadDeadline(aLongTimeAgo)
					parked++
				}
				c.parkMu.Unlock()
			}
		}
		s.mu.Unlock()
		// What the last sweeps parked is released once the parking
		// ends, or as it goes on for a large batch.
		burst += parked
		if (parked >= releaseAfterParking || parked == 0 && burst >= releaseAfterParking) && releaseMemory() {
			burst = 0
		}
	}
}

// releaseAfterParking is how many connections parked in one sweep, or
// in a run of sweeps (the end of a load spike, most likely), make the
// server give the memory they held back to the operating system rather
// than leave it to the runtime to reuse or return at its own pace:
// their stacks and buffers, about 12 KiB each. Without it, 10,000
// connections gone idle kept some 8 KiB each of freed memory resident.
const releaseAfterParking = 256

// lastRelease is when releaseMemory last ran, in Unix nanoseconds.
var lastRelease atomic.Int64

// releaseMemory returns freed memory to the operating system, at most
// once a second for the whole process (it is two collections and a walk
// over the free pages), and reports whether it did.
func releaseMemory() bool {
	now := time.Now().UnixNano()
	last := lastRelease.Load()
	if now-last < int64(time.Second) || !lastRelease.CompareAndSwap(last, now) {
		return false
	}
	// After the parked goroutines have exited. The first collection
	// moves the buffer pools' contents to their victim caches, the
	// second (FreeOSMemory's) frees them.
	time.AfterFunc(sweepEveryDefault/5, func() {
		runtime.GC()
		debug.FreeOSMemory()
	})
	return true
}

// waitIdle waits on the connection's goroutine for the next request.
// It returns park when the sweep interrupted the wait to park the
// connection, done when the connection is over.
func (c *conn) waitIdle() (next, park bool) {
	c.idleSince.Store(time.Now().UnixNano())
	c.state.Store(stateIdle)
	if c.srv.closing.Load() {
		return false, false
	}
	_, err := c.br.Peek(1)
	if c.state.CompareAndSwap(stateIdle, stateActive) {
		return err == nil, false
	}
	if c.state.Load() != stateParking {
		return false, false // closed by Shutdown or the idle timeout
	}
	// The sweep set the deadline under parkMu, after its state change:
	// taking the lock orders this reset after it.
	c.parkMu.Lock()
	_ = c.nc.SetReadDeadline(time.Time{})
	c.parkMu.Unlock()
	if err == nil {
		// A request came as the sweep moved: serve it.
		c.state.Store(stateActive)
		return true, false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && c.br.Buffered() == 0 {
		return false, true
	}
	return false, false
}
