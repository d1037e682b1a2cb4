package backend

import (
	"fmt"
	"net"
)

// ClosedAddr is a loopback address nothing listens on: a port the
// system just handed out and that was closed again, so connecting to it
// is refused. Tests use it as an upstream that is down.
func ClosedAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("closed address: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}
