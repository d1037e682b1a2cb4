package http1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"sync"
)

// errBodyAfterClose is what a read of a request body returns once the
// exchange is over: a goroutine still holding the body (an upstream
// writer) must not consume the next request on the connection.
var errBodyAfterClose = errors.New("http1: read on a closed request body")

// maxDrain bounds how much of an unread request body the server reads
// and discards to keep the connection, as net/http does.
const maxDrain = 256 << 10

// body is a request body: Content-Length delimited or chunked
// (RFC 9112 sections 6.2 and 7.1).
type body struct {
	c  *conn
	mu sync.Mutex
	br *bufio.Reader

	remaining int64 // Content-Length bytes left, or of the current chunk
	chunked   bool
	needCRLF  bool // a chunk's data ended; its CRLF is next
	eof       bool
	err       error
	closed    bool
	// trailer is where the trailer section goes; it points at the
	// request's Trailer field.
	trailer *http.Header
	// expect is set while a 100 Continue is owed before the first read.
	expect bool
	// framing is set when the body broke the chunked syntax: the server
	// answers 400 if the handler did not answer.
	framing bool
	// onEOF runs once the body was read to its end.
	onEOF func()
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyAfterClose
	}
	if b.expect {
		b.expect = false
		b.c.writeContinue()
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.chunked && b.remaining == 0 {
		if err := b.nextChunk(); err != nil {
			return 0, b.fail(err)
		}
		if b.eof {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, b.fail(err)
	}
	if b.remaining == 0 {
		if !b.chunked {
			b.setEOF()
			return n, io.EOF
		}
		b.needCRLF = true
		// The last chunk often came in the same read: end now so the
		// handler learns the end with the last bytes.
		if b.br.Buffered() >= 5 {
			if pk, _ := b.br.Peek(5); string(pk) == "\r\n0\r\n" {
				if err := b.nextChunk(); err != nil {
					return n, b.fail(err)
				}
				if b.eof {
					return n, io.EOF
				}
			}
		}
	}
	return n, nil
}

func (b *body) setEOF() {
	b.eof = true
	if b.onEOF != nil {
		b.onEOF()
	}
}

func (b *body) fail(err error) error {
	if errors.Is(err, errBadChunk) {
		// Whatever the handler is doing with the body (sending it
		// upstream) ends, and the client gets 400 (see serveRequest).
		b.framing = true
		b.c.cancel(err)
	}
	b.err = err
	return err
}

// nextChunk reads a chunk-size line, after the previous chunk's CRLF;
// at the last chunk it reads the trailer section and sets eof.
func (b *body) nextChunk() error {
	if b.needCRLF {
		crlf, err := b.br.Peek(2)
		if err != nil {
			return eofUnexpected(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return errBadChunk
		}
		_, _ = b.br.Discard(2)
		b.needCRLF = false
	}
	line, err := readLine(b.br, 4096)
	if err != nil {
		return err
	}
	size, ok := parseChunkSize(line)
	if !ok {
		return errBadChunk
	}
	if size > 0 {
		b.remaining = size
		return nil
	}
	if err := b.readTrailer(); err != nil {
		return err
	}
	b.setEOF()
	return nil
}

// readTrailer reads the trailer section after the last chunk. Fields
// that frame or route a message are dropped (RFC 9110 section 6.5.1).
func (b *body) readTrailer() error {
	total := 0
	for {
		line, err := readLine(b.br, 4096)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		total += len(line)
		if total > b.c.srv.maxHeaderBytes() {
			return errBadChunk
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errBadChunk
		}
		s := string(line)
		colon := indexByte(s, ':')
		if colon <= 0 || !validToken(s[:colon]) {
			return errBadChunk
		}
		v := trimOWS(s[colon+1:])
		if !validValue(v) {
			return errBadChunk
		}
		k := canonicalKey(s[:colon])
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer", "Host":
			continue
		}
		if *b.trailer == nil {
			*b.trailer = make(http.Header)
		}
		(*b.trailer)[k] = append((*b.trailer)[k], v)
	}
}

// readLine reads a line ended by CRLF and returns it without the CRLF.
// A bare LF, a line longer than max, or the end of input are errors.
// The slice is valid until the next read from br.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > max {
		return nil, errBadChunk
	}
	if err != nil {
		return nil, eofUnexpected(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errBadChunk
	}
	return line[:len(line)-2], nil
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseChunkSize reads chunk-size [ chunk-ext ]: hexadecimal digits
// bounded to 2^60, then extensions, which are checked and ignored.
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, false
	}
	rest := line[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, false
	}
	for _, c := range rest {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, false
		}
	}
	return n, true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// Close ends the body. What the handler left unread is read and
// discarded, up to maxDrain, so the connection can carry the next
// request; past that, or on an error, the connection closes.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeLocked()
	return nil
}

func (b *body) closeLocked() {
	if b.closed {
		return
	}
	b.closed = true
	if b.eof {
		return
	}
	if b.err != nil || b.expect {
		// Unread, with no 100 Continue sent: the client may never send
		// it, so the connection cannot be reused.
		b.c.closeAfter = true
		return
	}
	var buf [4096]byte
	drained := 0
	for !b.eof && b.err == nil {
		n, _ := b.readLocked(buf[:])
		drained += n
		if drained > maxDrain {
			break
		}
	}
	if !b.eof {
		b.c.closeAfter = true
	}
}
