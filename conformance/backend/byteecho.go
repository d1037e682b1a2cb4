package backend

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// ByteEcho is a raw TCP server that writes back every byte it reads
// and closes a connection once its client has closed its side: the
// upstream of tests of TCP proxying and network filters, where the
// tcp-echo sample's line prefixing (TCPServer) would get in the way.
type ByteEcho struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
	wg    sync.WaitGroup
}

// StartByteEcho listens on addr ("127.0.0.1:0" when empty).
func StartByteEcho(addr string) (*ByteEcho, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("byte echo: %w", err)
	}
	s := &ByteEcho{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *ByteEcho) Addr() string { return s.ln.Addr().String() }

// Port is the port the server listens on.
func (s *ByteEcho) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops listening, drops open connections and waits for their
// goroutines to end.
func (s *ByteEcho) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *ByteEcho) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_, _ = io.Copy(c, c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}
