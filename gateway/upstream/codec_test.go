package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestWriteRequestAsNetHTTP checks that the pool's codec writes what
// Request.Write writes, as a server parses it.
func TestWriteRequestAsNetHTTP(t *testing.T) {
	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"GET with headers", func() *http.Request {
			return &http.Request{Method: "GET", URL: &url.URL{Opaque: "/a/b", RawQuery: "x=1&y"}, Host: "svc:80",
				Header: http.Header{"Accept": {"*/*"}, "X-Multi": {"1", "2"}, "User-Agent": {"curl/8"}}}
		}},
		{"no User-Agent entry", func() *http.Request {
			return &http.Request{Method: "GET", URL: &url.URL{Host: "h", Path: "/"}, Header: http.Header{}}
		}},
		{"empty User-Agent entry", func() *http.Request {
			return &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: "h", Header: http.Header{"User-Agent": nil}}
		}},
		{"POST with a length", func() *http.Request {
			return &http.Request{Method: "POST", URL: &url.URL{Path: "/"}, Host: "h", Header: http.Header{},
				Body: io.NopCloser(strings.NewReader("hello")), ContentLength: 5}
		}},
		{"POST without a body", func() *http.Request {
			return &http.Request{Method: "POST", URL: &url.URL{Path: "/"}, Host: "h", Header: http.Header{}}
		}},
		{"chunked body", func() *http.Request {
			return &http.Request{Method: "PUT", URL: &url.URL{Path: "/"}, Host: "h", Header: http.Header{},
				Body: io.NopCloser(strings.NewReader(strings.Repeat("z", 70000))), ContentLength: -1}
		}},
		{"close, newline in a value, framing headers dropped", func() *http.Request {
			return &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: "h", Close: true,
				Header: http.Header{"X-A": {" v\r\nInjected: 1 "}, "Content-Length": {"9"}, "Transfer-Encoding": {"gzip"}}}
		}},
	}
	read := func(t *testing.T, b []byte) (*http.Request, string) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		return r, string(body)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ours, theirs bytes.Buffer
			bw := bufio.NewWriter(&ours)
			if err := writeRequest(bw, tt.req()); err != nil {
				t.Fatal(err)
			}
			bw.Flush()
			if err := tt.req().Write(&theirs); err != nil {
				t.Fatal(err)
			}
			a, ab := read(t, ours.Bytes())
			b, bb := read(t, theirs.Bytes())
			if a.Method != b.Method || a.RequestURI != b.RequestURI || a.Host != b.Host || a.ContentLength != b.ContentLength ||
				!reflect.DeepEqual(a.TransferEncoding, b.TransferEncoding) || a.Close != b.Close || ab != bb {
				t.Errorf("ours %q\ntheirs %q", ours.String(), theirs.String())
			}
			if !reflect.DeepEqual(a.Header, b.Header) {
				t.Errorf("header %v, net/http's %v", a.Header, b.Header)
			}
		})
	}
}

// TestReadResponseAsNetHTTP checks that the pool's codec reads a
// response as ReadResponse does, and refuses what it refuses.
func TestReadResponseAsNetHTTP(t *testing.T) {
	tests := []struct {
		name, method, raw string
	}{
		{"length", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\nETag: \"x\"\r\n\r\nhello"},
		{"chunked with trailers", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Grpc-Status\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nGrpc-Status: 0\r\nX-Extra: 1\r\n\r\n"},
		{"chunked drops Content-Length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"},
		{"read to close", "GET", "HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil the end"},
		{"HTTP/1.0 keep-alive", "GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"},
		{"HTTP/1.0 closes", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"Connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"},
		{"HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n"},
		{"304 with a length", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"},
		{"no reason", "GET", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"},
		{"bare LF", "GET", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
		{"folded value", "GET", "HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\nContent-Length: 0\r\n\r\n"},
		{"repeated equal lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
		{"differing lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"},
		{"bad length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nok"},
		{"bad status", "GET", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"bad proto", "GET", "HTTX/1.1 200 OK\r\n\r\n"},
		{"gzip coding", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"bad chunk", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n"},
		{"truncated", "GET", "HTTP/1.1 200 OK\r\nContent-Len"},
	}
	type view struct {
		Status, Proto    string
		Code             int
		Header, Trailer  http.Header
		Length           int64
		Close            bool
		TransferEncoding []string
		Body             string
		ErrHead, ErrBody bool
	}
	see := func(resp *http.Response, err error) view {
		if err != nil {
			return view{ErrHead: true}
		}
		b, berr := io.ReadAll(resp.Body)
		return view{resp.Status, resp.Proto, resp.StatusCode, resp.Header, resp.Trailer, resp.ContentLength, resp.Close,
			resp.TransferEncoding, string(b), false, berr != nil}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &http.Request{Method: tt.method}
			var fr framed
			ours := see(readResponse(bufio.NewReader(strings.NewReader(tt.raw)), req, &fr))
			theirs := see(http.ReadResponse(bufio.NewReader(strings.NewReader(tt.raw)), req))
			if !reflect.DeepEqual(ours, theirs) {
				t.Errorf("ours   %+v\ntheirs %+v", ours, theirs)
			}
		})
	}
}
