//go:build unix

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// peeker tells whether an idle connection's peer closed it, with one
// non-blocking MSG_PEEK, so a request is not written into a connection
// the server already dropped. The raw connection and the callback are
// made once per connection, keeping the check free of allocations.
type peeker struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	ok  bool
	buf [1]byte
}

func newPeeker(nc net.Conn) peeker {
	var p peeker
	if sc, ok := nc.(syscall.Conn); ok {
		p.rc, _ = sc.SyscallConn()
	}
	return p
}

func (p *peeker) alive() bool {
	if p.rc == nil {
		return true
	}
	if p.fn == nil {
		p.fn = func(fd uintptr) bool {
			n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			// EAGAIN: nothing to read, the connection is idle and open.
			// n == 0 without error is the peer's FIN; n > 0 is data
			// nobody asked for.
			_ = n
			p.ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
			return true
		}
	}
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	return p.ok
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
