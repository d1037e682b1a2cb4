package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/waygate/waygate/gateway/http1"
)

// The pool's own HTTP/1.1 client codec: a request head written with one
// pass over the header map into the connection's buffer, a response
// head parsed into one string, one header map and one value array,
// where net/http's Request.Write and ReadResponse spend a dozen
// allocations more per exchange: BenchmarkRoundTrip/pool, 26 allocations
// per request (the backend's included) against 34 with
// WAYGATE_HTTP1=nethttp, which (see package http1) has the pool use
// net/http's codec for every exchange. Requests it does not write byte
// for byte as Request.Write would (a non-ASCII host, a CONNECT,
// trailers announced in the head) go through Request.Write; an empty
// trailer map is one a chunked body may fill by its end, and the last
// chunk carries what it holds then.
var ownCodec = http1.Enabled

// defaultUserAgent is what Request.Write sends for a request without a
// User-Agent entry; the router sets an empty entry to send none.
const defaultUserAgent = "Go-http-client/1.1"

// writeRequest writes req's head and body to bw, as Request.Write does,
// and closes the body.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	if !ownCodec() || !plainRequest(req) {
		return req.Write(bw)
	}
	cl, err := writeRequestHead(bw, req)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return err
	}
	return writeRequestBody(bw, req, cl)
}

// writeRequestHead writes the head of a request that plainRequest
// accepts and returns the body's framing: its length, -1 for chunked.
// With a body, the head is flushed: the body may be a stream whose next
// bytes wait on the answer (a chat over a long POST, bidirectional
// gRPC), as Request.Write flushes it for bodies not in memory.
func writeRequestHead(bw *bufio.Writer, req *http.Request) (int64, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	ua := defaultUserAgent
	if v, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = trimValue(v[0])
		}
	}
	if ua != "" {
		bw.WriteString("User-Agent: ")
		writeFieldValue(bw, ua)
		bw.WriteString("\r\n")
	}
	cl := req.ContentLength
	switch {
	case hasBody && cl > 0, !hasBody && (cl > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch):
		if !hasBody {
			cl = 0
		}
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], cl, 10))
		bw.WriteString("\r\n")
	case hasBody:
		cl = -1
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if req.Close && !headerHasClose(req.Header) {
		bw.WriteString("Connection: close\r\n")
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !validName(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeFieldValue(bw, trimValue(v))
			bw.WriteString("\r\n")
		}
	}
	_, err := bw.WriteString("\r\n")
	if err != nil || !hasBody {
		return cl, err
	}
	return cl, bw.Flush()
}

// writeRequestBody writes the body after writeRequestHead, framed as it
// said, and closes it.
func writeRequestBody(bw *bufio.Writer, req *http.Request, cl int64) error {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	defer req.Body.Close()
	if cl > 0 {
		n, err := bw.ReadFrom(io.LimitReader(req.Body, cl))
		if err != nil {
			return err
		}
		if extra, err := io.Copy(io.Discard, req.Body); err != nil {
			return err
		} else {
			n += extra
		}
		if n != cl {
			return fmt.Errorf("http: ContentLength=%d with Body length %d", cl, n)
		}
		return nil
	}
	return writeChunked(bw, req.Body, req.Trailer)
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeChunked streams a body of unknown length, a flush per chunk so a
// stream (gRPC, a long upload the server answers as it goes) is not
// held in the buffer. The trailer section after the last chunk holds
// what trailer has once the body ended.
func writeChunked(bw *bufio.Writer, body io.Reader, trailer http.Header) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var hdr [18]byte
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			bw.Write(strconv.AppendUint(hdr[:0], uint64(n), 16))
			bw.WriteString("\r\n")
			bw.Write(buf[:n])
			bw.WriteString("\r\n")
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			bw.WriteString("0\r\n")
			writeTrailer(bw, trailer)
			_, err := bw.WriteString("\r\n")
			return err
		}
		if rerr != nil {
			return rerr
		}
	}
}

// writeTrailer writes a trailer section's fields. A name that is no
// field name (a filter may set anything) is left out, and so are the
// fields that frame a message, which a recipient must not take from
// trailers (RFC 9110 section 6.5.1).
func writeTrailer(bw *bufio.Writer, trailer http.Header) {
	for k, vs := range trailer {
		if !validName(k) {
			continue
		}
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Transfer-Encoding", "Trailer", "Host":
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeFieldValue(bw, trimValue(v))
			bw.WriteString("\r\n")
		}
	}
}

// plainRequest reports whether writeRequest's own path writes req as
// Request.Write would.
func plainRequest(req *http.Request) bool {
	if req.URL == nil || req.Method == http.MethodConnect || len(req.Trailer) > 0 || len(req.TransferEncoding) > 0 {
		return false
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c >= 0x7f || c == '%' || c == '/' {
			return false // punycode, zones and invalid hosts: net/http's rules
		}
	}
	return true
}

func headerHasClose(h http.Header) bool {
	for _, v := range h["Connection"] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "close") {
				return true
			}
		}
	}
	return false
}

// trimValue trims the whitespace Request.Write trims.
func trimValue(v string) string {
	return strings.TrimFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}

// writeFieldValue writes v with CR and LF replaced by spaces, as
// Request.Write does, so a value cannot split the request.
func writeFieldValue(bw *bufio.Writer, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = newlineToSpace.Replace(v)
	}
	bw.WriteString(v)
}

func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

var (
	errMalformedResponse = errors.New("malformed HTTP response")
	errResponseTooLarge  = errors.New("response head exceeds 1 MiB")
	errBadChunked        = errors.New("malformed chunked encoding")
)

// maxResponseHead bounds a response head.
const maxResponseHead = 1 << 20

// readResponse reads a response head for req and frames its body as
// RFC 9112 section 6.3 says. The body, if any, is fr's.
func readResponse(br *bufio.Reader, req *http.Request, fr *framed) (*http.Response, error) {
	if !ownCodec() {
		return http.ReadResponse(br, req)
	}
	s, err := readResponseHead(br)
	if err != nil {
		return nil, err
	}
	line, rest, _ := strings.Cut(s, "\n")
	line = strings.TrimSuffix(line, "\r")
	// The response and its first values live in fr, which the pool
	// allocates with the body anyway.
	resp := &fr.resp
	*resp = http.Response{Request: req}
	proto, status, ok := strings.Cut(line, " ")
	if !ok || len(proto) != 8 || !strings.HasPrefix(proto, "HTTP/1.") || proto[7] < '0' || proto[7] > '9' {
		return nil, errMalformedResponse
	}
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = proto, 1, int(proto[7]-'0')
	status = strings.TrimLeft(status, " ")
	if len(status) < 3 || len(status) > 3 && status[3] != ' ' {
		return nil, errMalformedResponse
	}
	code, err := strconv.Atoi(status[:3])
	if err != nil || code < 100 {
		return nil, errMalformedResponse
	}
	resp.StatusCode, resp.Status = code, status
	if err := parseResponseFields(rest, resp, fr.vals[:]); err != nil {
		return nil, err
	}
	return resp, frameBody(br, req, resp, fr)
}

// readResponseHead reads up to the empty line ending the head and
// returns the head without it. Bare LF line ends are accepted, as
// net/http's client accepts them.
func readResponseHead(br *bufio.Reader) (string, error) {
	var buf []byte
	lineStart := 0
	for {
		frag, err := br.ReadSlice('\n')
		if buf == nil && err == nil && len(frag) > 2 {
			// Most heads are whole in the buffer: find their end there
			// and copy them once, into the string the fields share.
			if i := endOfHead(br, frag); i > 0 {
				b, _ := br.Peek(i - len(frag))
				eol := 1
				if len(b) >= 2 && b[len(b)-2] == '\r' {
					eol = 2
				}
				var sb strings.Builder
				sb.Grow(len(frag) + len(b) - eol)
				sb.Write(frag)
				sb.Write(b[:len(b)-eol])
				_, _ = br.Discard(len(b))
				return sb.String(), nil
			}
		}
		buf = append(buf, frag...)
		if len(buf) > maxResponseHead {
			return "", errResponseTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		line := buf[lineStart:]
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			if lineStart == 0 {
				return "", errMalformedResponse
			}
			return string(buf[:lineStart]), nil
		}
		lineStart = len(buf)
	}
}

// endOfHead returns the length of the head that starts with frag (just
// read) and continues in br's buffer, up to and including its empty
// line, or 0 when the buffer does not hold all of it.
func endOfHead(br *bufio.Reader, frag []byte) int {
	rest, _ := br.Peek(br.Buffered())
	for i := 0; i < len(rest); {
		j := indexLF(rest[i:])
		if j < 0 {
			return 0
		}
		if j == 0 || j == 1 && rest[i] == '\r' {
			return len(frag) + i + j + 1
		}
		i += j + 1
	}
	return 0
}

func indexLF(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// parseResponseFields parses the header lines. A folded line (obs-fold)
// joins the previous value with a space, as a proxy must do or refuse
// (RFC 9112 section 5.2).
func parseResponseFields(rest string, resp *http.Response, space []string) error {
	n := strings.Count(rest, "\n")
	h := make(http.Header, n)
	vals := space
	if n <= len(space) {
		clear(space)
	} else {
		vals = make([]string, n)
	}
	var lastKey string
	for i := 0; rest != ""; i++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			vs := h[lastKey]
			if lastKey == "" || len(vs) == 0 {
				return errMalformedResponse
			}
			vs[len(vs)-1] = vs[len(vs)-1] + " " + strings.Trim(line, " \t")
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !validName(line[:colon]) {
			return errMalformedResponse
		}
		v := strings.Trim(line[colon+1:], " \t")
		for j := 0; j < len(v); j++ {
			if c := v[j]; c < ' ' && c != '\t' || c == 0x7f {
				return errMalformedResponse
			}
		}
		k := http1.CanonicalKey(line[:colon])
		lastKey = k
		if prev, ok := h[k]; ok {
			h[k] = append(prev, v)
			continue
		}
		vals[i] = v
		h[k] = vals[i : i+1 : i+1]
	}
	resp.Header = h
	return nil
}

// frameBody sets the response's body, length, Close and Trailer, as
// net/http's ReadResponse does.
func frameBody(br *bufio.Reader, req *http.Request, resp *http.Response, fr *framed) error {
	h := resp.Header
	code := resp.StatusCode
	headReq := req != nil && req.Method == http.MethodHead
	noBody := headReq || code/100 == 1 || code == http.StatusNoContent || code == http.StatusNotModified

	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok && resp.ProtoMinor >= 1 {
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return fmt.Errorf("unsupported transfer encoding: %q", strings.Join(te, ","))
		}
		chunked = true
		delete(h, "Content-Length")
	}
	delete(h, "Transfer-Encoding")
	cl := int64(-1)
	if vs := h["Content-Length"]; len(vs) > 0 {
		first := strings.TrimSpace(vs[0])
		for _, v := range vs[1:] {
			if strings.TrimSpace(v) != first {
				return errors.New("http: message cannot contain multiple Content-Length headers")
			}
		}
		n, err := strconv.ParseUint(first, 10, 63)
		if err != nil {
			return fmt.Errorf("bad Content-Length %q", first)
		}
		cl = int64(n)
		if len(vs) > 1 {
			h["Content-Length"] = vs[:1]
		}
	}
	conn := h["Connection"]
	if resp.ProtoMinor == 0 {
		resp.Close = !hasToken(conn, "keep-alive")
	} else {
		resp.Close = hasToken(conn, "close")
	}
	if resp.Close && hasToken(conn, "close") {
		delete(h, "Connection")
	}
	switch {
	case noBody:
		resp.Body = http.NoBody
		if headReq {
			resp.ContentLength = cl
		}
		if code == http.StatusSwitchingProtocols {
			resp.Close = true
		}
		return nil
	case chunked:
		resp.ContentLength = -1
		resp.TransferEncoding = []string{"chunked"}
		if vs, ok := h["Trailer"]; ok {
			delete(h, "Trailer")
			for _, v := range vs {
				for _, t := range strings.Split(v, ",") {
					if t = strings.TrimSpace(t); t != "" {
						if resp.Trailer == nil {
							resp.Trailer = make(http.Header)
						}
						resp.Trailer[http1.CanonicalKey(t)] = nil
					}
				}
			}
		}
		fr.frame(br, 0, true, &resp.Trailer)
	case cl == 0:
		resp.ContentLength = 0
		resp.Body = http.NoBody
		return nil
	case cl > 0:
		resp.ContentLength = cl
		fr.frame(br, cl, false, nil)
	default:
		// No length: the body ends with the connection.
		resp.ContentLength = -1
		resp.Close = true
		fr.frame(br, -1, false, nil)
	}
	resp.Body = fr
	return nil
}

func hasToken(vs []string, token string) bool {
	for _, v := range vs {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// framed is a response body: Content-Length delimited, chunked, or read
// to the connection's end (remaining -1).
type framed struct {
	br        *bufio.Reader
	remaining int64
	chunked   bool
	needCRLF  bool
	eof       bool
	err       error
	trailer   *http.Header

	// resp and vals are readResponse's response and the backing of its
	// header values, when there are few.
	resp http.Response
	vals [8]string
}

// frame starts reading a body, keeping resp and vals.
func (f *framed) frame(br *bufio.Reader, remaining int64, chunked bool, trailer *http.Header) {
	f.br, f.remaining, f.chunked, f.trailer = br, remaining, chunked, trailer
	f.needCRLF, f.eof, f.err = false, false, nil
}

func (f *framed) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if f.remaining < 0 {
		n, err := f.br.Read(p)
		if err == io.EOF {
			f.eof = true
		} else if err != nil {
			f.err = err
		}
		return n, err
	}
	if f.chunked && f.remaining == 0 {
		if err := f.nextChunk(); err != nil {
			f.err = err
			return 0, err
		}
		if f.eof {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > f.remaining {
		p = p[:f.remaining]
	}
	n, err := f.br.Read(p)
	f.remaining -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		f.err = err
		return n, err
	}
	if f.remaining == 0 {
		if !f.chunked {
			f.eof = true
			return n, io.EOF
		}
		f.needCRLF = true
		// The last chunk usually came with this one: end with it.
		if pk, _ := f.br.Peek(min(f.br.Buffered(), 5)); string(pk) == "\r\n0\r\n" {
			if err := f.nextChunk(); err != nil {
				f.err = err
				return n, err
			}
			if f.eof {
				return n, io.EOF
			}
		}
	}
	return n, nil
}

// nextChunk reads the CRLF ending the previous chunk and the next
// chunk-size line; at the last chunk, the trailer section.
func (f *framed) nextChunk() error {
	if f.needCRLF {
		b, err := f.br.Peek(2)
		if err != nil {
			return unexpected(err)
		}
		if b[0] != '\r' || b[1] != '\n' {
			return errBadChunked
		}
		_, _ = f.br.Discard(2)
		f.needCRLF = false
	}
	line, err := f.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return errBadChunked
		}
		return unexpected(err)
	}
	line = trimEOL(line)
	if i := indexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	size, ok := parseHex(trimSpaceBytes(line))
	if !ok {
		return errBadChunked
	}
	if size > 0 {
		f.remaining = size
		return nil
	}
	// The trailer section.
	total := 0
	for {
		line, err := f.br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return errBadChunked
			}
			return unexpected(err)
		}
		line = trimEOL(line)
		if len(line) == 0 {
			f.eof = true
			return nil
		}
		if total += len(line); total > maxResponseHead {
			return errBadChunked
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok || !validName(k) {
			return errBadChunked
		}
		k = http1.CanonicalKey(k)
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if *f.trailer == nil {
			*f.trailer = make(http.Header)
		}
		(*f.trailer)[k] = append((*f.trailer)[k], strings.Trim(v, " \t"))
	}
}

func (f *framed) Close() error { return nil }

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

func trimSpaceBytes(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}
