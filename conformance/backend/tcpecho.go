package backend

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// TCPServer is the tcp-echo service of Istio's TCP traffic-shifting task
// (samples/tcp-echo): every line it reads comes back as "<prefix> <line>",
// so the first word of a reply tells which version a TCP route picked.
type TCPServer struct {
	prefix string
	ln     net.Listener

	connections atomic.Int64
	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	closed      bool
	wg          sync.WaitGroup
}

// StartTCPEcho listens on opts.Addr and echoes with opts.Prefix, or
// opts.Version when Prefix is empty ("one", "two" in the sample).
func StartTCPEcho(opts Options) (*TCPServer, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = opts.Version
	}
	if prefix == "" {
		return nil, errors.New("backend: tcp-echo needs Options.Prefix or Options.Version")
	}
	ln, err := net.Listen("tcp", opts.addr())
	if err != nil {
		return nil, fmt.Errorf("tcp-echo %s: %w", prefix, err)
	}
	s := &TCPServer{prefix: prefix, ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *TCPServer) Addr() string { return s.ln.Addr().String() }

// Connections counts the connections accepted so far.
func (s *TCPServer) Connections() int64 { return s.connections.Load() }

// Close stops listening, drops open connections and waits for their
// goroutines to end.
func (s *TCPServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *TCPServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.connections.Add(1)
		go s.serve(c)
	}
}

// serve echoes line by line until the client closes its side; a last
// line without a newline is echoed too, as `(date; sleep 1) | nc` in the
// sample ends its input.
func (s *TCPServer) serve(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			if _, werr := fmt.Fprintf(c, "%s %s", s.prefix, line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
