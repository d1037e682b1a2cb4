package upstream_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startServer serves h on loopback.
func startServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func post(addr string, body io.Reader, n int64) *http.Request {
	return &http.Request{
		Method: "POST", URL: &url.URL{Scheme: "http", Host: addr, Opaque: "/"},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Host: "svc",
		Body: io.NopCloser(body), ContentLength: n,
	}
}

func TestPoolRequestBodies(t *testing.T) {
	addr := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("early") {
			// Answer without reading the body.
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		io.WriteString(w, strconv.FormatInt(n, 10))
	})
	_, cl, _ := build(t, cluster([]ep{{addr: addr}}, nil))
	e := cl.Endpoints()[0]

	for _, n := range []int64{1 << 20, -1} {
		body := strings.NewReader(strings.Repeat("x", 1<<20))
		resp, err := cl.RoundTrip(e, post(addr, body, n), false)
		if err != nil {
			t.Fatalf("content-length %d: %v", n, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "1048576" {
			t.Errorf("content-length %d: backend read %s bytes, want 1048576", n, b)
		}
	}

	// A server that answers before the body is sent does not leave
	// the request hanging on a client that is still uploading.
	pr, pw := io.Pipe()
	defer pw.Close()
	req := post(addr, pr, -1)
	req.URL.RawQuery = "early"
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := cl.RoundTrip(e, req, false)
		if err != nil {
			t.Errorf("early answer: %v", err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("early answer: status %d", resp.StatusCode)
		}
	}()
	pw.Write([]byte("some"))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the early answer never came back")
	}
	if e.ActiveRequests() != 0 {
		t.Errorf("%d requests still active", e.ActiveRequests())
	}
	if _, status, err := send(t.Context(), cl, nil); err != nil || status != 200 {
		t.Errorf("next request: %d %v", status, err)
	}
}

// TestPoolServerClosedIdle: a connection the server closed while idle
// is not used for the next request.
func TestPoolServerClosedIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), IdleTimeout: 20 * time.Millisecond}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, cl, _ := build(t, cluster([]ep{{addr: ln.Addr().String()}}, nil))
	for i := 0; i < 3; i++ {
		if _, status, err := send(t.Context(), cl, nil); err != nil || status != 200 {
			t.Fatalf("request %d: %d %v", i, status, err)
		}
		time.Sleep(60 * time.Millisecond) // the server drops the idle connection
	}
}
