package backend

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
)

// Echo is the JSON body a backend answers with: what it is and what
// request it saw. Tests decode it to check what the gateway forwarded.
type Echo struct {
	Service string `json:"service"`
	Version string `json:"version"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	Query   string `json:"query,omitempty"`
	Host    string `json:"host"`
	// Headers are the request headers, names in lower case and repeated
	// values joined with ", ", so HTTP/1.1 and HTTP/2 read the same.
	Headers   map[string]string `json:"headers"`
	Source    string            `json:"source"`
	Proto     string            `json:"proto"`
	BodyBytes int64             `json:"body_bytes"`
	Status    int               `json:"status"`
}

// ServeHTTP answers one request; see the package doc for the controls.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		s.requests.Add(1)
		s.grpc.ServeHTTP(w, r)
		return
	}
	if isH2CUpgrade(r) {
		s.serveUpgrade(w, r)
		return
	}
	h := w.Header()
	h.Set("x-service", s.opts.Service)
	h.Set("x-version", s.opts.Version)
	h.Set("server", "waygate-demo")

	switch {
	case r.URL.Path == "/healthz":
		s.serveHealth(w)
		return
	case strings.HasPrefix(r.URL.Path, "/admin/"):
		s.serveAdmin(w, r)
		return
	}
	s.requests.Add(1)
	s.active.Add(1)
	defer s.active.Add(-1)

	n := readBody(r)

	c, err := parseControls(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.opts.Service == "httpbin" {
		httpbinControls(r.URL.Path, &c)
	}
	if !sleep(r.Context(), c.delay) {
		return // the client, or the gateway's timeout, gave up
	}
	if c.reset {
		reset(w, r)
		return
	}
	for _, kv := range c.headers {
		h.Add(kv[0], kv[1])
	}

	status := c.status
	if r.URL.Path == "/fail" || s.shouldFail() {
		status = http.StatusServiceUnavailable
	}
	if c.bodySize >= 0 {
		writeSized(w, status, c.bodySize)
		return
	}
	if status == 0 {
		status = http.StatusOK
	}
	// Any other status asked for gets the echo, which says what was
	// asked; a Bookinfo body with a 503 would be neither.
	if status == http.StatusOK && s.serveBookinfo(w, r) {
		return
	}
	writeJSON(w, status, s.describe(r, n, status))
}

// keptBody is how much of a request body stays readable after
// readBody: enough for a Bookinfo login form.
const keptBody = 64 << 10

// readBody reads the whole body before anything else, so body_bytes is
// known and an HTTP/1.1 connection stays reusable whatever happens next;
// the first keptBody bytes are put back for the handlers that parse them.
func readBody(r *http.Request) int64 {
	var kept bytes.Buffer
	n, _ := io.Copy(&kept, io.LimitReader(r.Body, keptBody))
	rest, _ := io.Copy(io.Discard, r.Body)
	r.Body = io.NopCloser(&kept)
	return n + rest
}

func (s *Server) describe(r *http.Request, bodyBytes int64, status int) Echo {
	e := Echo{
		Service:   s.opts.Service,
		Version:   s.opts.Version,
		Method:    r.Method,
		Path:      r.URL.Path,
		Query:     r.URL.RawQuery,
		Host:      r.Host,
		Headers:   make(map[string]string, len(r.Header)),
		Source:    r.RemoteAddr,
		Proto:     r.Proto,
		BodyBytes: bodyBytes,
		Status:    status,
	}
	for k, v := range r.Header {
		e.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return e
}

func (s *Server) serveHealth(w http.ResponseWriter) {
	if s.unhealthy.Load() {
		http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
}

// serveAdmin changes the backend's behavior at run time, for scenarios
// driven from outside the test process (curl, the conformance runner).
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "admin calls are POST", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/admin/healthy":
		s.SetHealthy(true)
	case "/admin/unhealthy":
		s.SetHealthy(false)
	case "/admin/fail":
		p, err := parsePercent(r.URL.Query().Get("percent"))
		if err == nil {
			err = s.SetFailPercent(p)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	default:
		http.Error(w, "unknown admin call; want /admin/healthy, /admin/unhealthy or /admin/fail?percent=N", http.StatusNotFound)
		return
	}
	io.WriteString(w, "ok\n")
}

// reset drops the connection without a response, as a crashed or
// overloaded workload would. On HTTP/1.1 the socket is closed with
// SO_LINGER 0 so the peer sees a TCP RST rather than a clean EOF; on
// HTTP/2 only the stream is reset (RST_STREAM), which is what
// http.ErrAbortHandler does.
func reset(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// writeSized sends n bytes of a repeating printable pattern, so a client
// can check both the length and that the bytes arrived in order.
func writeSized(w http.ResponseWriter, status int, n int64) {
	if status == 0 {
		status = http.StatusOK
	}
	if !bodyAllowed(status) {
		w.WriteHeader(status)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", itoa(n))
	w.WriteHeader(status)
	var chunk [4096]byte
	for i := range chunk {
		chunk[i] = pattern[i%len(pattern)]
	}
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := w.Write(chunk[:k]); err != nil {
			return
		}
		n -= k
	}
}

// pattern has a length that divides the chunk size, so the bytes repeat
// across chunk boundaries without a seam.
const pattern = "abcdefghijklmnopqrstuvwxyz012345"

func writeJSON(w http.ResponseWriter, status int, v any) {
	if !bodyAllowed(status) {
		w.WriteHeader(status)
		return
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", itoa(int64(len(b))))
	w.WriteHeader(status)
	w.Write(b)
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// bodyAllowed reports whether a response with this status may carry a
// body (RFC 9110 sections 15.3.5 and 15.4.5).
func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}
