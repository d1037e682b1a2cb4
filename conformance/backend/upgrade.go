package backend

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// The standard library serves cleartext HTTP/2 with prior knowledge
// (http.Protocols.SetUnencryptedHTTP2) but not the HTTP/1.1 Upgrade of
// RFC 7540 section 3.2, which is what `curl --http2 http://...` and some
// proxies send. A backend for testing gateways should accept both, so
// the Upgrade is done here: answer 101, then hand the connection to an
// HTTP/2 server with the upgrading request as stream 1.

// maxUpgradeBody bounds the request body read before switching
// protocols; it must be read whole because stream 1 replays it.
const maxUpgradeBody = 1 << 20

func isH2CUpgrade(r *http.Request) bool {
	return r.ProtoMajor == 1 &&
		httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "h2c") &&
		httpguts.HeaderValuesContainsToken(r.Header["Connection"], "HTTP2-Settings")
}

func (s *Server) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	settings, err := decodeSettings(r.Header.Get("HTTP2-Settings"))
	if err != nil {
		http.Error(w, "HTTP2-Settings: "+err.Error(), http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUpgradeBody+1))
	if err != nil || len(body) > maxUpgradeBody {
		http.Error(w, "h2c upgrade: request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	// The request becomes stream 1 of the new connection; the HTTP/2
	// server passes it on unchanged, so it is made to look like the
	// HTTP/2 request it now is, without the hop-by-hop upgrade headers.
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	for _, h := range []string{"Upgrade", "Connection", "HTTP2-Settings"} {
		r.Header.Del(h)
	}

	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "h2c upgrade: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if !s.track(conn, true) {
		conn.Close()
		return
	}
	defer func() {
		s.track(conn, false)
		conn.Close()
	}()
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	if err := rw.Flush(); err != nil {
		return
	}
	h2 := &http2.Server{}
	h2.ServeConn(&bufferedConn{Conn: conn, r: rw.Reader}, &http2.ServeConnOpts{
		Context:        r.Context(),
		BaseConfig:     s.http,
		Handler:        s,
		UpgradeRequest: r,
		Settings:       settings,
	})
}

// decodeSettings decodes the HTTP2-Settings header: base64url, padding
// optional (RFC 7540 section 3.2.1).
func decodeSettings(v string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
}

// bufferedConn reads first what the HTTP/1.1 server had already
// buffered: the client may send its HTTP/2 preface right behind the
// upgrade request.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
