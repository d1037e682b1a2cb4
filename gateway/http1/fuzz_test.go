package http1

import (
	"bufio"
	"bytes"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// parseRequest reads and parses one request head from b.
func parseRequest(b []byte) (*request, *statusError) {
	head, _, serr, err := readHead(bufio.NewReader(bytes.NewReader(b)), nil, 8<<10)
	if err != nil {
		return nil, badRequest(err.Error())
	}
	if serr != nil {
		return nil, serr
	}
	var r request
	if serr := parseHead(string(head), &r); serr != nil {
		return nil, serr
	}
	return &r, nil
}

// serialize writes a parsed request head back.
func serialize(r *request) []byte {
	var b strings.Builder
	b.WriteString(r.method + " " + r.target + " " + r.proto + "\r\n")
	if r.host != "" || r.minor == 1 {
		b.WriteString("Host: " + r.host + "\r\n")
	}
	if r.chunked {
		b.WriteString("Transfer-Encoding: chunked\r\n")
	}
	keys := make([]string, 0, len(r.header))
	for k := range r.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.header[k] {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// FuzzParseRequest: parsing never panics, refuses with a 4xx or 5xx,
// and a parsed request written back parses to the same request.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nfoo: a\r\nFoo: b\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\nExpect: 100-continue\r\n\r\n",
		"GET http://h:1/p HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /%41 HTTP/1.1\r\nHost: x\r\nA: \xff\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n",
		"\r\nGET / HTTP/1.1\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, serr := parseRequest(b)
		if serr != nil {
			if serr.code < 400 || serr.code > 599 {
				t.Fatalf("status %d", serr.code)
			}
			return
		}
		again := serialize(r)
		r2, serr := parseRequest(again)
		if serr != nil {
			t.Fatalf("%q parsed, written back as %q refused: %v", b, again, serr)
		}
		r.url, r2.url = nil, nil // compared through target and host
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("%q parsed as %+v, written back as %q parsed as %+v", b, r, again, r2)
		}
	})
}
