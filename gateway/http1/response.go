package http1

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// pendingMax is how much body the writer holds before it commits to
// chunked framing: a handler that writes a short body and returns gets
// a Content-Length response in one write, as from net/http.
const pendingMax = 4096

// response is the http.ResponseWriter of one exchange. It is reused for
// every exchange of its connection; handlers must not keep it past
// ServeHTTP, as net/http requires.
type response struct {
	c      *conn
	header http.Header

	status      int
	wroteHeader bool // the final status is chosen
	headSent    bool // the head is in the write buffer
	isHead      bool
	minor       int // request's HTTP/1.x minor version

	contentLength int64 // declared by the handler or computed; -1 unknown
	written       int64
	chunked       bool
	handlerDone   bool
	declared      []string // names announced in a Trailer header
	pending       []byte
	err           error
}

// reset readies w for an exchange. Its header map is empty: new, or
// cleared when the last exchange ended (see serveOne).
func (w *response) reset(c *conn, minor int, isHead bool) {
	*w = response{c: c, header: w.header, minor: minor, isHead: isHead, contentLength: -1, pending: w.pending[:0]}
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader || w.c.hijacked {
		return
	}
	if code < 100 || code > 999 {
		panic("http1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// An informational response (103 Early Hints) goes at once,
		// with the headers set so far.
		w.c.wmu.Lock()
		w.c.continueDone = true
		bw := w.c.bw
		writeStatusLine(bw, w.minor, code)
		w.writeFields(bw)
		bw.WriteString("\r\n")
		if err := bw.Flush(); err != nil && w.err == nil {
			w.err = err
		}
		w.c.wmu.Unlock()
		return
	}
	w.wroteHeader = true
	w.status = code
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.headSent {
		if _, sized := w.header["Content-Length"]; !sized && len(w.pending)+len(p) <= pendingMax {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.c.wmu.Lock()
		w.commit()
		w.c.wmu.Unlock()
	}
	return w.writeBody(p)
}

// WriteString spares the handler's conversion of a string body.
func (w *response) WriteString(s string) (int, error) {
	if !w.headSent && w.wroteHeader && bodyAllowed(w.status) && len(w.pending)+len(s) <= pendingMax {
		if _, sized := w.header["Content-Length"]; !sized && w.err == nil && !w.c.hijacked {
			w.pending = append(w.pending, s...)
			return len(s), nil
		}
	}
	return w.Write([]byte(s))
}

// writeBody frames p after the head was committed.
func (w *response) writeBody(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.isHead || len(p) == 0 {
		return len(p), nil
	}
	bw := w.c.bw
	var err error
	if w.chunked {
		var hdr [18]byte
		b := strconv.AppendUint(hdr[:0], uint64(len(p)), 16)
		b = append(b, '\r', '\n')
		if _, err = bw.Write(b); err == nil {
			if _, err = bw.Write(p); err == nil {
				_, err = bw.WriteString("\r\n")
			}
		}
	} else {
		_, err = bw.Write(p)
	}
	if err != nil {
		w.err = err
		return 0, err
	}
	return len(p), nil
}

// commit chooses the framing and puts the head in the write buffer,
// followed by what body was pending. The caller holds c.wmu.
func (w *response) commit() {
	if w.headSent {
		return
	}
	w.headSent = true
	w.c.continueDone = true
	h := w.header
	delete(h, "Transfer-Encoding")
	if v, ok := h["Content-Length"]; ok {
		if len(v) == 1 {
			if n, ok := parseContentLength(v[0]); ok {
				w.contentLength = n
			}
		}
		if w.contentLength < 0 {
			delete(h, "Content-Length")
		}
	}
	if vs, ok := h["Trailer"]; ok {
		for _, v := range vs {
			forTokens(v, func(t string) { w.declared = append(w.declared, canonicalKey(t)) })
		}
	}
	hasBody := bodyAllowed(w.status)
	computed := false
	switch {
	case !hasBody || w.contentLength >= 0:
	case w.handlerDone && len(w.declared) == 0 && !w.hasTrailerKeys():
		if !w.isHead || len(w.pending) > 0 {
			w.contentLength = int64(len(w.pending))
			computed = true
		}
	case w.isHead:
	case w.minor == 1:
		w.chunked = true
	default:
		// An HTTP/1.0 client reads a body of unknown length to the
		// connection's end.
		w.c.closeAfter = true
	}
	if w.minor == 0 && !w.c.closeAfter && !w.c.req.close {
		h["Connection"] = keepAliveValue
	}
	if !w.c.closeAfter && (w.c.req.close || w.c.srv.shuttingDown() || hasToken(h["Connection"], "close")) {
		w.c.closeAfter = true
	}
	if w.c.closeAfter && !hasToken(h["Connection"], "close") {
		h["Connection"] = closeValue
	}
	bw := w.c.bw
	writeStatusLine(bw, w.minor, w.status)
	w.writeFields(bw)
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	if computed {
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], w.contentLength, 10))
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		p := w.pending
		w.pending = w.pending[:0]
		_, _ = w.writeBody(p)
	}
}

var (
	keepAliveValue = []string{"keep-alive"}
	closeValue     = []string{"close"}
)

func (w *response) hasTrailerKeys() bool {
	for k := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// writeFields writes the header fields. A CR or LF in a value becomes a
// space, as net/http does, so a filter's value cannot split the
// response; names that are not tokens are dropped.
func (w *response) writeFields(bw *bufio.Writer) {
	for k, vs := range w.header {
		if !validToken(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
}

func writeValue(bw *bufio.Writer, v string) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			b := []byte(v)
			for j := range b {
				if b[j] == '\r' || b[j] == '\n' {
					b[j] = ' '
				}
			}
			bw.Write(b)
			return
		}
	}
	bw.WriteString(v)
}

// finish ends the response after the handler returned.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	w.commit()
	if w.err != nil {
		w.c.closeAfter = true
		return
	}
	if w.chunked {
		bw := w.c.bw
		bw.WriteString("0\r\n")
		for k, vs := range w.header {
			name, ok := strings.CutPrefix(k, http.TrailerPrefix)
			if !ok {
				continue
			}
			if name = canonicalKey(name); !validToken(name) {
				continue
			}
			for _, v := range vs {
				bw.WriteString(name)
				bw.WriteString(": ")
				writeValue(bw, v)
				bw.WriteString("\r\n")
			}
		}
		for _, name := range w.declared {
			for _, v := range w.header[name] {
				bw.WriteString(name)
				bw.WriteString(": ")
				writeValue(bw, v)
				bw.WriteString("\r\n")
			}
		}
		bw.WriteString("\r\n")
	}
	if w.contentLength >= 0 && w.written < w.contentLength && !w.isHead {
		// A short body: the client can only tell by the connection's end.
		w.c.closeAfter = true
	}
	if err := w.c.bw.Flush(); err != nil {
		w.c.closeAfter = true
	}
}

// FlushError sends what was written so far: the head, committing to
// chunked framing when the length is unknown.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	w.commit()
	if w.err != nil {
		return w.err
	}
	if err := w.c.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

func (w *response) Flush() { _ = w.FlushError() }

// Hijack hands the connection over (an upgrade): the server forgets it.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.headSent {
		return nil, nil, errHijackAfterHead
	}
	c.hijacked = true
	c.stopBackgroundRead()
	_ = c.nc.SetDeadline(time.Time{})
	return c.nc, bufio.NewReadWriter(c.br, c.bw), nil
}

var errHijackAfterHead = &statusError{code: http.StatusInternalServerError, reason: "http1: Hijack after the response head was written"}

// EnableFullDuplex is what http.ResponseController calls: this server is
// always full duplex, the request body may be read while the response is
// written.
func (w *response) EnableFullDuplex() error { return nil }

func (w *response) SetReadDeadline(t time.Time) error  { return w.c.nc.SetReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

func bodyAllowed(status int) bool {
	return !(status >= 100 && status < 200 || status == http.StatusNoContent || status == http.StatusNotModified)
}

func hasToken(vs []string, token string) bool {
	found := false
	for _, v := range vs {
		forTokens(v, func(t string) {
			if strings.EqualFold(t, token) {
				found = true
			}
		})
	}
	return found
}

// statusLines caches "HTTP/1.1 200 OK\r\n" for every known status.
var statusLines = func() (t [2][600]string) {
	for code := 100; code < 600; code++ {
		text := http.StatusText(code)
		if text == "" {
			continue
		}
		t[0][code] = "HTTP/1.0 " + strconv.Itoa(code) + " " + text + "\r\n"
		t[1][code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
	}
	return t
}()

func writeStatusLine(bw *bufio.Writer, minor, code int) {
	if code < 600 && statusLines[minor][code] != "" {
		bw.WriteString(statusLines[minor][code])
		return
	}
	bw.WriteString("HTTP/1." + strconv.Itoa(minor) + " " + strconv.Itoa(code) + " status code " + strconv.Itoa(code) + "\r\n")
}

// dateCache holds the Date value of the current second, shared by every
// connection: formatting it per response would cost an allocation.
var dateCache atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	s   string
}

func httpDate() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &dateValue{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}
