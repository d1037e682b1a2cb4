//go:build !unix

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// peeker cannot look at a socket without reading on this platform; a
// connection the server closed while idle is detected when the request
// on it fails, and the request is sent again when it has no body.
type peeker struct{}

func newPeeker(net.Conn) peeker { return peeker{} }

func (*peeker) alive() bool { return true }

func isConnReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
