package listener

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
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

// inspection says how connections of a listener are inspected.
type inspection struct {
	// timeout bounds the inspection (listener_filters_timeout); 0
	// means none.
	timeout time.Duration
	// continueOnTimeout matches a connection that sent nothing in time
	// as raw_buffer instead of closing it
	// (continue_on_listener_filters_timeout), for protocols where the
	// server speaks first.
	continueOnTimeout bool
	// sniffHTTP reads plaintext up to its request line for the HTTP
	// version (http_inspector).
	sniffHTTP bool
}

// inspect reads just enough of a new connection to learn its transport
// protocol and, for TLS, the SNI and ALPN of the ClientHello; with
// sniffHTTP, plaintext is read up to its request line for the HTTP
// version. It returns a connection that replays what was read. TLS
// parsing is left to crypto/tls: a handshake is started and stopped at
// the ClientHello callback.
func inspect(c net.Conn, f *connFacts, opts inspection) (net.Conn, error) {
	if opts.timeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(opts.timeout))
		defer c.SetReadDeadline(time.Time{})
	}
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		var ne net.Error
		if opts.continueOnTimeout && errors.As(err, &ne) && ne.Timeout() {
			// Envoy's default transport protocol when none was detected.
			f.transport = "raw_buffer"
			return c, nil
		}
		return nil, err
	}
	if first[0] != 0x16 { // not a TLS handshake record
		f.transport = "raw_buffer"
		head := first[:]
		if opts.sniffHTTP {
			head = sniff(c, head, f)
		}
		return &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(head), c)}, nil
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

// maxSniff bounds what HTTP sniffing reads looking for the end of the
// request line.
const maxSniff = 8 << 10

// sniff is Envoy's http_inspector: it reads plaintext until it can tell
// HTTP/2 with prior knowledge ("h2c") or an HTTP/1 request line
// ("http/1.1", "http/1.0") from anything else, and sets the ALPN that
// filter chain matching sees. It returns everything read, head first;
// a read error or timeout leaves the protocol unknown.
// See https://www.envoyproxy.io/docs/envoy/latest/configuration/listeners/listener_filters/http_inspector
func sniff(c net.Conn, head []byte, f *connFacts) []byte {
	buf := append([]byte(nil), head...)
	tmp := make([]byte, 1024)
	for {
		proto, done := httpProtocol(buf)
		if done || len(buf) >= maxSniff {
			if proto != "" {
				f.alpn = []string{proto}
			}
			return buf
		}
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			return buf
		}
	}
}

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// httpProtocol names the HTTP version the first bytes of a connection
// speak; done is false while more bytes could change the answer.
func httpProtocol(b []byte) (proto string, done bool) {
	if len(b) < len(h2Preface) && strings.HasPrefix(h2Preface, string(b)) {
		return "", false
	}
	if bytes.HasPrefix(b, []byte(h2Preface)) {
		return "h2c", true
	}
	// A request line starts with a method, an upper-case token.
	if len(b) == 0 || b[0] < 'A' || b[0] > 'Z' {
		return "", true
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return "", false
	}
	line := bytes.TrimSuffix(b[:i], []byte("\r"))
	switch {
	case bytes.HasSuffix(line, []byte(" HTTP/1.1")):
		return "http/1.1", true
	case bytes.HasSuffix(line, []byte(" HTTP/1.0")):
		return "http/1.0", true
	}
	return "", true
}
