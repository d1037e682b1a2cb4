package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadResponse: reading any bytes as a response never panics, and
// a status and body read by the pool's codec are the ones net/http
// reads when it accepts the response too.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: A\r\n\r\n2;x\r\nok\r\n0\r\nA: b\r\n\r\n",
		"HTTP/1.0 404 Not Found\r\nX: a\r\n b\r\n\r\nrest",
		"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, head bool) {
		req := &http.Request{Method: "GET"}
		if head {
			req.Method = "HEAD"
		}
		var fr framed
		ours, err := readResponse(bufio.NewReader(bytes.NewReader(b)), req, &fr)
		if err != nil {
			return
		}
		ob, oerr := io.ReadAll(io.LimitReader(ours.Body, 1<<20))
		theirs, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), req)
		if err != nil {
			return
		}
		tb, terr := io.ReadAll(io.LimitReader(theirs.Body, 1<<20))
		if ours.StatusCode != theirs.StatusCode || ours.ContentLength != theirs.ContentLength || ours.Close != theirs.Close {
			t.Fatalf("%q: status %d length %d close %v, net/http %d %d %v", b, ours.StatusCode, ours.ContentLength, ours.Close,
				theirs.StatusCode, theirs.ContentLength, theirs.Close)
		}
		if oerr == nil && terr == nil && !bytes.Equal(ob, tb) {
			t.Fatalf("%q: body %q, net/http %q", b, ob, tb)
		}
	})
}
