package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// fillAtEOF is a body that fills a trailer map when it ends, as the
// downstream's body does with the trailers it read.
type fillAtEOF struct {
	r       io.Reader
	trailer http.Header
	fill    http.Header
}

func (f *fillAtEOF) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		for k, v := range f.fill {
			f.trailer[k] = v
		}
	}
	return n, err
}

func (f *fillAtEOF) Close() error { return nil }

// TestWriteChunkedTrailers checks the trailer section of a chunked
// request whose trailers nobody announced: what the map holds once the
// body ended goes after the last chunk, as a server reads it, without
// invalid names or fields that frame the message.
func TestWriteChunkedTrailers(t *testing.T) {
	tests := []struct {
		name string
		fill http.Header
		want http.Header
	}{
		{"none", nil, nil},
		{"one", http.Header{"X-Sum": {"abc"}}, http.Header{"X-Sum": {"abc"}}},
		{"several values", http.Header{"X-Sum": {"a", "b"}}, http.Header{"X-Sum": {"a", "b"}}},
		{"a value with a newline", http.Header{"X-Sum": {"a\r\nX-Evil: 1"}}, http.Header{"X-Sum": {"a  X-Evil: 1"}}},
		{"framing fields and bad names left out",
			http.Header{"Content-Length": {"9"}, "Transfer-Encoding": {"x"}, "Bad Name": {"1"}, "X-Ok": {"1"}},
			http.Header{"X-Ok": {"1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trailer := http.Header{}
			u, _ := url.Parse("http://backend/upload")
			req := &http.Request{Method: "POST", URL: u, Host: "backend", Header: http.Header{}, ProtoMajor: 1, ProtoMinor: 1,
				Body: &fillAtEOF{r: strings.NewReader("payload"), trailer: trailer, fill: tt.fill}, ContentLength: -1, Trailer: trailer}
			if !plainRequest(req) {
				t.Fatal("a request with an empty trailer map should take the pool's own path")
			}
			var buf bytes.Buffer
			bw := bufio.NewWriter(&buf)
			if err := writeRequest(bw, req); err != nil {
				t.Fatal(err)
			}
			bw.Flush()
			got, err := http.ReadRequest(bufio.NewReader(&buf))
			if err != nil {
				t.Fatalf("%q: %v", buf.String(), err)
			}
			b, err := io.ReadAll(got.Body)
			if err != nil || string(b) != "payload" {
				t.Fatalf("body %q, %v", b, err)
			}
			if len(got.Trailer) != len(tt.want) {
				t.Errorf("trailers %v, want %v", got.Trailer, tt.want)
			}
			for k, v := range tt.want {
				if g := got.Trailer[k]; strings.Join(g, "|") != strings.Join(v, "|") {
					t.Errorf("trailer %s = %q, want %q", k, g, v)
				}
			}
		})
	}
}
