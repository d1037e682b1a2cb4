package listener

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// replayConn is a connection whose first bytes were read for inspection
// and are handed out again before the rest.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes, so the TCP proxy can pass a FIN along.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// recordingConn feeds crypto/tls during inspection: reads come from the
// connection and are recorded; writes are refused, so nothing reaches the
// client before a chain is chosen.
type recordingConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.buf.Write(p[:n])
	return n, err
}

func (c *recordingConn) Write(p []byte) (int, error) { return 0, errInspectWrite }

var (
	errInspectWrite = errors.New("inspection does not write")
	errHelloRead    = errors.New("client hello read")
)

// inspect reads just enough of a new connection to learn its transport
// protocol and, for TLS, the SNI and ALPN of the ClientHello. It returns a
// connection that replays what was read. Parsing is left to crypto/tls:
// a handshake is started and stopped at the ClientHello callback.
func inspect(c net.Conn, f *connFacts, timeout time.Duration) (net.Conn, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return nil, err
	}
	if first[0] != 0x16 { // not a TLS handshake record
		f.transport = "raw_buffer"
		return &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(first[:]), c)}, nil
	}
	f.transport = "tls"
	rc := &recordingConn{Conn: &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(first[:]), c)}}
	err := tls.Server(rc, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			f.sni = h.ServerName
			f.alpn = append([]string(nil), h.SupportedProtos...)
			return nil, errHelloRead
		},
	}).Handshake()
	if err != nil && !errors.Is(err, errHelloRead) && rc.buf.Len() == 0 {
		return nil, err
	}
	// Whatever crypto/tls read (the whole ClientHello, or the bytes of
	// a malformed one) is replayed to the chain's own handshake.
	return &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(rc.buf.Bytes()), c)}, nil
}
