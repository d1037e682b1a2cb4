package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
)

// Options says who a backend is and how it starts.
type Options struct {
	// Service is the name the backend answers as ("reviews").
	Service string
	// Version is its version label ("v2"); for tcp-echo, the default prefix.
	Version string
	// Addr is the address to listen on; "" means "127.0.0.1:0".
	Addr string
	// FailPercent answers that percentage (0-100) of application
	// requests with 503, spread evenly, to trip outlier detection.
	FailPercent int
	// Unhealthy starts the backend with /healthz answering 503.
	Unhealthy bool
	// Prefix is what tcp-echo puts before each line; "" means Version.
	Prefix string
}

func (o Options) addr() string {
	if o.Addr == "" {
		return "127.0.0.1:0"
	}
	return o.Addr
}

// Server is a running HTTP backend. It speaks HTTP/1.1 and cleartext
// HTTP/2 on one port, so a gateway can be tested with either upstream
// protocol without a second backend.
type Server struct {
	opts Options
	ln   net.Listener
	http *http.Server
	grpc *grpc.Server

	requests    atomic.Int64
	active      atomic.Int64
	unhealthy   atomic.Bool
	failPercent atomic.Int64
	failSeq     atomic.Int64

	// upgraded holds connections taken over by an h2c Upgrade: the
	// http.Server no longer tracks them, so Close must.
	mu       sync.Mutex
	upgraded map[net.Conn]struct{}
	closed   bool
	done     chan struct{}
}

// Start listens on opts.Addr and serves until Close.
func Start(opts Options) (*Server, error) {
	if opts.Service == "" {
		return nil, errors.New("backend: Options.Service is required")
	}
	if opts.FailPercent < 0 || opts.FailPercent > 100 {
		return nil, fmt.Errorf("backend: Options.FailPercent %d: must be within 0-100", opts.FailPercent)
	}
	ln, err := net.Listen("tcp", opts.addr())
	if err != nil {
		return nil, fmt.Errorf("backend %s %s: %w", opts.Service, opts.Version, err)
	}
	s := &Server{
		opts:     opts,
		ln:       ln,
		upgraded: map[net.Conn]struct{}{},
		done:     make(chan struct{}),
	}
	s.unhealthy.Store(opts.Unhealthy)
	s.failPercent.Store(int64(opts.FailPercent))
	s.grpc = newGRPCServer(s)

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s.http = &http.Server{
		Handler:           s,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		// A backend that logs every reset it was asked to make would
		// only add noise to test output.
		ErrorLog: discardLogger(),
	}
	go func() {
		defer close(s.done)
		s.http.Serve(ln)
	}()
	return s, nil
}

// Addr is the host:port the backend listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is "http://" + Addr.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Service and Version are the identity the backend answers with.
func (s *Server) Service() string { return s.opts.Service }

// Version is the version label the backend answers with.
func (s *Server) Version() string { return s.opts.Version }

// Requests counts the application requests the backend has received,
// including those it failed or reset on purpose; /healthz and /admin/
// calls are not counted, so a gateway's health checks do not blur what
// a test measures.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Active is the number of application requests being handled now. It
// lets a test see that a gateway which gave up on a request (a timeout,
// a client that went away) also released it upstream.
func (s *Server) Active() int64 { return s.active.Load() }

// SetHealthy sets what /healthz answers: 200 when true, 503 when false.
func (s *Server) SetHealthy(ok bool) { s.unhealthy.Store(!ok) }

// SetFailPercent changes Options.FailPercent while serving.
func (s *Server) SetFailPercent(p int) error {
	if p < 0 || p > 100 {
		return fmt.Errorf("backend: fail percent %d: must be within 0-100", p)
	}
	s.failPercent.Store(int64(p))
	return nil
}

// Close stops listening and drops every connection, including requests
// still in flight: a test that closes a backend wants it gone.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.upgraded {
		c.Close()
	}
	s.mu.Unlock()
	err := s.http.Close()
	s.grpc.Stop()
	<-s.done
	return err
}

// track registers a hijacked connection; it reports false when the
// server is already closed and the connection must not be served.
func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.upgraded, c)
		return true
	}
	if s.closed {
		return false
	}
	s.upgraded[c] = struct{}{}
	return true
}

// shouldFail decides, for the n-th application request, whether the
// configured failure percentage asks for a 503. The decision is
// deterministic and even (50% fails every other request) so tests of
// consecutive-error ejection are reproducible.
func (s *Server) shouldFail() bool {
	p := s.failPercent.Load()
	if p <= 0 {
		return false
	}
	n := s.failSeq.Add(1)
	return (n*p)/100 != ((n-1)*p)/100
}

// sleep waits d or until ctx ends, reporting whether it waited the full d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
