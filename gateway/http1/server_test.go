package http1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// start serves h with a Server on loopback until the test ends.
func start(tb testing.TB, h http.Handler) (*Server, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Handler: h, MaxHeaderBytes: 8 << 10, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(context.Background(), c, nil)
		}
	}()
	tb.Cleanup(func() { ln.Close(); s.Close() })
	return s, ln.Addr().String()
}

// echo answers with what it learned of the request.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Uri", r.RequestURI)
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Proto", r.Proto)
	w.Header().Set("X-Cl", fmt.Sprint(r.ContentLength))
	w.Header().Set("X-Te", strings.Join(r.TransferEncoding, ","))
	w.Header().Set("X-Foo", strings.Join(r.Header["Foo"], "|"))
	if r.Trailer != nil {
		w.Header().Set("X-Trailer", r.Trailer.Get("Checksum"))
	}
	_, _ = w.Write(b)
})

// exchange writes raw on a new connection and reads one response.
func exchange(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(strings.TrimLeft(raw, "\r\n"), " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response to %q: %v", raw, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestMalformedRequests(t *testing.T) {
	_, addr := start(t, echo)
	big := strings.Repeat("a", 9<<10)
	tests := []struct {
		name string
		raw  string
		want int
	}{
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nFoo: a\r\n b\r\n\r\n", 400},
		{"bare LF in a header", "GET / HTTP/1.1\r\nHost: x\nFoo: a\r\n\r\n", 400},
		{"bare LF ending the request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400},
		{"bare CR in a value", "GET / HTTP/1.1\r\nHost: x\r\nFoo: a\rb\r\n\r\n", 400},
		{"NUL in a value", "GET / HTTP/1.1\r\nHost: x\r\nFoo: a\x00b\r\n\r\n", 400},
		{"space before the colon", "GET / HTTP/1.1\r\nHost: x\r\nFoo : a\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\nHost: x\r\nFoo\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n", 400},
		{"duplicate Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 400},
		{"Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\na", 400},
		{"signed Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na", 400},
		{"huge Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\na", 400},
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"chunked not last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
		{"chunked twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"unknown coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"identity coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk data longer than its size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size line with bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"invalid Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"double space in the request line", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"control byte in the target", "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"bad escape", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"invalid method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
		{"garbage version", "GET / HTTP/1.1x\r\nHost: x\r\n\r\n", 400},
		{"oversized header", "GET / HTTP/1.1\r\nHost: x\r\nFoo: " + big + "\r\n\r\n", 431},
		{"oversized request line", "GET /" + big + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"unknown expectation", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417},
		{"Content-Length as trailer", "POST / HTTP/1.1\r\nHost: x\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := exchange(t, addr, tt.raw)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tt.want)
			}
			if !resp.Close {
				t.Errorf("the connection stays open after a refused request")
			}
		})
	}
}

func TestRequests(t *testing.T) {
	_, addr := start(t, echo)
	tests := []struct {
		name   string
		raw    string
		status int
		header map[string]string
		body   string
	}{
		{"GET", "GET /a?b=c HTTP/1.1\r\nHost: x\r\nfoo: 1\r\nFOO: 2\r\n\r\n", 200,
			map[string]string{"X-Method": "GET", "X-Uri": "/a?b=c", "X-Host": "x", "X-Foo": "1|2", "X-Cl": "0"}, ""},
		{"Content-Length body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 200,
			map[string]string{"X-Cl": "5", "Content-Length": "5"}, "hello"},
		{"chunked body with trailers", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nTrailer: Checksum\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nChecksum: abc\r\n\r\n", 200,
			map[string]string{"X-Cl": "-1", "X-Te": "chunked", "X-Trailer": "abc"}, "hello"},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 200, map[string]string{"X-Proto": "HTTP/1.0"}, ""},
		{"absolute form", "GET http://example.com/p?q HTTP/1.1\r\nHost: other\r\n\r\n", 200,
			map[string]string{"X-Host": "example.com", "X-Uri": "http://example.com/p?q"}, ""},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, nil, ""},
		{"obs-text value", "GET / HTTP/1.1\r\nHost: x\r\nFoo: caf\xe9\r\n\r\n", 200, map[string]string{"X-Foo": "caf\xe9"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := exchange(t, addr, tt.raw)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tt.status)
			}
			for k, v := range tt.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if body != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
		})
	}
}

// TestKeepAliveAndPipelining sends three requests at once on one
// connection and reads three responses in order.
func TestKeepAliveAndPipelining(t *testing.T) {
	_, addr := start(t, echo)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	raw := "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nd\r\n0\r\n\r\n"
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, want := range []string{"", "abc", "d"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if uri := resp.Header.Get("X-Uri"); uri != fmt.Sprintf("/%d", i+1) || string(b) != want {
			t.Errorf("response %d: uri %q body %q, want /%d %q", i+1, uri, b, i+1, want)
		}
		if resp.Close {
			t.Errorf("response %d closes the connection", i+1)
		}
	}
}

func TestConnectionClose(t *testing.T) {
	_, addr := start(t, echo)
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, raw)
		all, err := io.ReadAll(c) // ends only if the server closes
		c.Close()
		if err != nil || !strings.HasPrefix(string(all), "HTTP/1.") {
			t.Fatalf("%q: %q, %v", raw, all, err)
		}
	}
	// HTTP/1.0 with keep-alive stays open.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		_, _ = io.WriteString(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		_, _ = io.ReadAll(resp.Body)
		if resp.Header.Get("Connection") != "keep-alive" {
			t.Fatalf("Connection %q, want keep-alive", resp.Header.Get("Connection"))
		}
	}
}

// TestExpectContinue: the client sends the body only after 100
// Continue, which comes when the handler reads the body; a handler that
// answers without reading gets no 100 and the connection closes.
func TestExpectContinue(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/deny" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		echo(w, r)
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("%q, %v; want 100 Continue", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("%q after 100 Continue", l)
	}
	_, _ = io.WriteString(c, "ok")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}

	_, _ = io.WriteString(c, "POST /deny HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("status %d close %v, want 401 and close", resp.StatusCode, resp.Close)
	}
}

// TestResponseFraming: a short body written before the handler returns
// gets a Content-Length; a flushed or long one is chunked and carries
// trailers; HEAD and 204 carry no body.
func TestResponseFraming(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/short":
			_, _ = io.WriteString(w, "hello")
		case "/stream":
			w.Header().Set("Trailer", "Declared")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "a")
			http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, strings.Repeat("b", 10000))
			w.Header().Set("Declared", "yes")
			w.Header().Set(http.TrailerPrefix+"Late", "too")
		case "/nocontent":
			w.WriteHeader(204)
		case "/sized":
			w.Header().Set("Content-Length", "3")
			_, _ = io.WriteString(w, "abc")
		}
	}))
	resp, body := exchange(t, addr, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.ContentLength != 5 || body != "hello" || resp.Header.Get("Date") == "" {
		t.Errorf("/short: length %d body %q date %q", resp.ContentLength, body, resp.Header.Get("Date"))
	}
	resp, body = exchange(t, addr, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	if len(resp.TransferEncoding) != 1 || len(body) != 10001 || resp.Trailer.Get("Declared") != "yes" || resp.Trailer.Get("Late") != "too" {
		t.Errorf("/stream: te %v len %d trailers %v", resp.TransferEncoding, len(body), resp.Trailer)
	}
	resp, body = exchange(t, addr, "HEAD /sized HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.ContentLength != 3 || body != "" {
		t.Errorf("HEAD /sized: length %d body %q", resp.ContentLength, body)
	}
	resp, _ = exchange(t, addr, "GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 204 || len(resp.TransferEncoding) != 0 {
		t.Errorf("/nocontent: %d %v", resp.StatusCode, resp.TransferEncoding)
	}
}

// TestHijack: an upgrade takes the connection over.
func TestHijack(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo " + line)
		_ = brw.Flush()
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\nhi\n")
	all, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(all), "HTTP/1.1 101") || !strings.HasSuffix(string(all), "echo hi\n") {
		t.Fatalf("%q", all)
	}
}

// TestClientGoneCancelsContext: a client that closes while its request
// runs cancels the request's context.
func TestClientGoneCancelsContext(t *testing.T) {
	done := make(chan error, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			done <- context.Cause(r.Context())
		case <-time.After(5 * time.Second):
			done <- nil
		}
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if err := <-done; err != errClientGone {
		t.Fatalf("cause %v, want %v", err, errClientGone)
	}
}

// TestShutdownClosesIdle: idle connections close at once, a busy one
// after its response, which says Connection: close.
func TestShutdownClosesIdle(t *testing.T) {
	release := make(chan struct{})
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
	}))
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(idle)
	_, _ = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_ = busy.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	s.Shutdown()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want EOF", err)
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil || !resp.Close {
		t.Fatalf("busy connection: %v, close %v", err, resp != nil && resp.Close)
	}
}

func TestSniff(t *testing.T) {
	for _, tt := range []struct {
		in string
		h2 bool
	}{
		{preface + "rest", true},
		{"GET / HTTP/1.0\r\n\r\n", false},
		{"PRI * HTTP/1.1\r\n", false},
		{"P", false}, // then EOF
	} {
		h2, err := Sniff(bufio.NewReader(strings.NewReader(tt.in)))
		if err != nil || h2 != tt.h2 {
			t.Errorf("%q: %v %v, want %v", tt.in, h2, err, tt.h2)
		}
	}
}

// BenchmarkServer compares this server with net/http's behind the same
// handler, over one loopback keep-alive connection.
func BenchmarkServer(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Header()["Content-Length"] = []string{"1024"}
		_, _ = w.Write(body)
	})
	req := "GET /bench HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
	run := func(b *testing.B, addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := io.WriteString(c, req); err != nil {
				b.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
		}
	}
	b.Run("http1", func(b *testing.B) {
		_, addr := start(b, h)
		run(b, addr)
	})
	b.Run("nethttp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		run(b, ln.Addr().String())
	})
}

// TestBrokenChunkedBodyGets400: a handler that streams the body
// elsewhere (the router) sees its context end when the framing breaks,
// and the client gets 400 rather than the handler's answer.
func TestBrokenChunkedBodyGets400(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() { _, _ = io.Copy(io.Discard, r.Body) }()
		select {
		case <-r.Context().Done():
			panic(http.ErrAbortHandler)
		case <-time.After(5 * time.Second):
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	resp, body := exchange(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX\r\n")
	if resp.StatusCode != 400 || !resp.Close {
		t.Fatalf("status %d %q close %v, want 400 and close", resp.StatusCode, body, resp.Close)
	}
}
