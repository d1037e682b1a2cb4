package wasm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// hwHostcall is one function of the http_handler host module.
type hwHostcall struct {
	params, results []api.ValueType
	fn              api.GoModuleFunc
}

// hwHostcalls are the http_handler functions, by import name. A call
// the ABI says fails (a bad pointer, a header set after next without
// buffer_response, an unknown kind) traps, which the host takes as the
// instance's failure.
// https://http-wasm.io/http-handler-abi/
var hwHostcalls = map[string]hwHostcall{}

func init() {
	n := func(k int) []api.ValueType { return slices.Repeat([]api.ValueType{api.ValueTypeI32}, k) }
	r32 := []api.ValueType{api.ValueTypeI32}
	r64 := []api.ValueType{api.ValueTypeI64}
	for name, h := range map[string]hwHostcall{
		"enable_features":      {n(1), r32, hwEnableFeatures},
		"get_config":           {n(2), r32, hwGetConfig},
		"log_enabled":          {n(1), r32, hwLogEnabled},
		"log":                  {n(3), nil, hwLog},
		"get_method":           {n(2), r32, hwGetMethod},
		"set_method":           {n(2), nil, hwSetMethod},
		"get_uri":              {n(2), r32, hwGetURI},
		"set_uri":              {n(2), nil, hwSetURI},
		"get_protocol_version": {n(2), r32, hwGetProtocolVersion},
		"get_source_addr":      {n(2), r32, hwGetSourceAddr},
		"get_header_names":     {n(3), r64, hwGetHeaderNames},
		"get_header_values":    {n(5), r64, hwGetHeaderValues},
		"set_header_value":     {n(5), nil, hwSetHeaderValue},
		"add_header_value":     {n(5), nil, hwAddHeaderValue},
		"remove_header":        {n(3), nil, hwRemoveHeader},
		"read_body":            {n(3), r64, hwReadBody},
		"write_body":           {n(3), nil, hwWriteBody},
		"get_status_code":      {nil, r32, hwGetStatusCode},
		"set_status_code":      {n(1), nil, hwSetStatusCode},
	} {
		hwHostcalls[name] = h
	}
}

// hwTrap ends the running call with a trap, as the ABI asks of a host
// that cannot do what the guest asked.
type hwTrap string

func (t hwTrap) Error() string { return "http-wasm: " + string(t) }

// stream is the stream whose call is running; outside one (the guest's
// initialization) only features, config and logging are available.
func hwStreamOf(ctx context.Context, fn string) (*hwVM, *hwStream) {
	v := hwVMOf(ctx)
	if v.cur == nil {
		panic(hwTrap(fn + " called outside handle_request and handle_response"))
	}
	return v, v.cur
}

func hwRead(m api.Module, ptr, n uint32, what string) []byte {
	if n == 0 {
		return nil
	}
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(hwTrap("out of memory reading " + what))
	}
	return b
}

// hwWrite writes b at buf when it fits buf_limit, and returns its length
// either way: a guest learns the length with a limit of 0.
func hwWrite(m api.Module, buf, limit uint32, b string) uint64 {
	if len(b) > 0 && uint64(len(b)) <= uint64(limit) {
		if !m.Memory().WriteString(buf, b) {
			panic(hwTrap("out of memory writing a result"))
		}
	}
	return uint64(len(b))
}

// hwWriteList writes ss NUL-terminated when they fit, and returns
// count<<32 | length.
func hwWriteList(m api.Module, buf, limit uint32, ss []string) uint64 {
	total := 0
	for _, s := range ss {
		total += len(s) + 1
	}
	if total > 0 && uint64(total) <= uint64(limit) {
		mem := m.Memory()
		off := buf
		for _, s := range ss {
			if !mem.WriteString(off, s) || !mem.WriteByte(off+uint32(len(s)), 0) {
				panic(hwTrap("out of memory writing a result"))
			}
			off += uint32(len(s)) + 1
		}
	}
	return uint64(len(ss))<<32 | uint64(total)
}

func hwEnableFeatures(ctx context.Context, _ api.Module, stack []uint64) {
	v := hwVMOf(ctx)
	want := uint32(stack[0]) & hwFeatures
	if s := v.cur; s != nil {
		if !s.afterNext {
			s.features |= want
		}
		stack[0] = uint64(s.features)
		return
	}
	v.features |= want
	stack[0] = uint64(v.features)
}

func hwGetConfig(ctx context.Context, m api.Module, stack []uint64) {
	v := hwVMOf(ctx)
	stack[0] = hwWrite(m, uint32(stack[0]), uint32(stack[1]), string(v.pool.cfg.pluginConfig))
}

// hwLevel maps the ABI's log levels (-1 debug .. 2 error, 3 none).
func hwLevel(l int32) (slog.Level, bool) {
	switch {
	case l <= -1:
		return slog.LevelDebug, true
	case l == 0:
		return slog.LevelInfo, true
	case l == 1:
		return slog.LevelWarn, true
	case l == 2:
		return slog.LevelError, true
	}
	return 0, false
}

func hwLogEnabled(ctx context.Context, _ api.Module, stack []uint64) {
	lv, ok := hwLevel(int32(stack[0]))
	stack[0] = b2u(ok && hwVMOf(ctx).log.Enabled(ctx, lv))
}

// hwLog logs the guest's message; a message it cannot read is dropped,
// as the ABI asks, rather than trapping.
func hwLog(ctx context.Context, m api.Module, stack []uint64) {
	v := hwVMOf(ctx)
	lv, ok := hwLevel(int32(stack[0]))
	if !ok || !v.log.Enabled(ctx, lv) {
		return
	}
	b, ok := m.Memory().Read(uint32(stack[1]), uint32(stack[2]))
	if !ok {
		return
	}
	v.log.Log(ctx, lv, string(b))
}

func hwGetMethod(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "get_method")
	stack[0] = hwWrite(m, uint32(stack[0]), uint32(stack[1]), s.x.Request.Method)
}

func hwSetMethod(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "set_method")
	s.mustBeforeNext("set the method")
	method := string(hwRead(m, uint32(stack[0]), uint32(stack[1]), "method"))
	if !validToken(method) {
		panic(hwTrap("invalid method " + quote(method)))
	}
	s.x.Request.Method = method
	s.routeMod = true
}

func hwGetURI(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "get_uri")
	uri := s.x.Request.Path
	if uri == "" {
		uri = "/"
	}
	stack[0] = hwWrite(m, uint32(stack[0]), uint32(stack[1]), uri)
}

// hwSetURI sets the path and query, as encoded; an empty one is "/".
func hwSetURI(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "set_uri")
	s.mustBeforeNext("set the URI")
	uri := string(hwRead(m, uint32(stack[0]), uint32(stack[1]), "uri"))
	if uri == "" {
		uri = "/"
	}
	if uri[0] != '/' || strings.ContainsFunc(uri, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		panic(hwTrap("invalid URI " + quote(uri)))
	}
	s.x.Request.Path = uri
	s.routeMod = true
}

// hwGetProtocolVersion answers in net/http's spelling ("HTTP/2.0"), as
// http-wasm hosts do.
func hwGetProtocolVersion(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "get_protocol_version")
	p := s.x.Request.Protocol
	switch p {
	case "HTTP/2", "HTTP/3":
		p += ".0"
	case "":
		p = "HTTP/1.1"
	}
	stack[0] = hwWrite(m, uint32(stack[0]), uint32(stack[1]), p)
}

func hwGetSourceAddr(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "get_source_addr")
	addr := ""
	if a := s.x.Downstream.RemoteAddr; a.IsValid() {
		addr = a.String()
	}
	stack[0] = hwWrite(m, uint32(stack[0]), uint32(stack[1]), addr)
}

// Header kinds.
const (
	hwRequest = iota
	hwResponse
	hwRequestTrailers
	hwResponseTrailers
)

// headers is the header map of kind; the request's Host is in
// Authority, shown to the guest as "host".
func (s *hwStream) headers(kind uint32, create bool) http.Header {
	switch kind {
	case hwRequest:
		return s.x.Request.Header
	case hwResponse:
		return s.responseHeader(create)
	case hwRequestTrailers, hwResponseTrailers:
		return nil
	}
	panic(hwTrap("unknown header kind"))
}

func hwGetHeaderNames(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "get_header_names")
	kind := uint32(stack[0])
	h := s.headers(kind, false)
	names := make([]string, 0, len(h)+1)
	if kind == hwRequest && s.x.Request.Authority != "" {
		names = append(names, "host")
	}
	for k := range h {
		names = append(names, strings.ToLower(k))
	}
	slices.Sort(names)
	stack[0] = hwWriteList(m, uint32(stack[1]), uint32(stack[2]), names)
}

func hwGetHeaderValues(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "get_header_values")
	kind := uint32(stack[0])
	name := hwName(m, stack[1], stack[2])
	var vals []string
	if kind == hwRequest && name == "Host" {
		if a := s.x.Request.Authority; a != "" {
			vals = []string{a}
		}
	} else {
		vals = s.headers(kind, false)[name]
	}
	stack[0] = hwWriteList(m, uint32(stack[3]), uint32(stack[4]), vals)
}

// hwName reads a header name, in net/http's canonical form.
func hwName(m api.Module, ptr, n uint64) string {
	b := hwRead(m, uint32(ptr), uint32(n), "header name")
	if !validToken(string(b)) {
		panic(hwTrap("invalid header name " + quote(string(b))))
	}
	return canonicalName(b)
}

// canonicalName is textproto.CanonicalMIMEHeaderKey of a valid token,
// copied out of the guest's memory once.
func canonicalName(b []byte) string {
	var buf [64]byte
	if len(b) > len(buf) {
		return textproto.CanonicalMIMEHeaderKey(string(b))
	}
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	return string(buf[:len(b)])
}

// mutableHeaders checks that kind may change now and returns its map:
// request headers before next only, response headers before next or,
// with buffer_response, in handle_response. Trailers are not supported.
func (s *hwStream) mutableHeaders(kind uint32) http.Header {
	switch kind {
	case hwRequest:
		s.mustBeforeNext("change request headers")
		s.routeMod = true
	case hwResponse:
		s.mustBeforeNextOr(featureBufferResponse, "change response headers")
	case hwRequestTrailers, hwResponseTrailers:
		panic(hwTrap("trailers are not supported"))
	default:
		panic(hwTrap("unknown header kind"))
	}
	return s.headers(kind, true)
}

func hwHeaderArgs(ctx context.Context, m api.Module, stack []uint64, fn string) (*hwStream, http.Header, string, string) {
	_, s := hwStreamOf(ctx, fn)
	h := s.mutableHeaders(uint32(stack[0]))
	name := hwName(m, stack[1], stack[2])
	value := string(hwRead(m, uint32(stack[3]), uint32(stack[4]), "header value"))
	if strings.ContainsAny(value, "\r\n\x00") {
		panic(hwTrap("invalid value for header " + name))
	}
	return s, h, name, value
}

func hwSetHeaderValue(ctx context.Context, m api.Module, stack []uint64) {
	s, h, name, value := hwHeaderArgs(ctx, m, stack, "set_header_value")
	if uint32(stack[0]) == hwRequest && name == "Host" {
		s.x.Request.Authority = value
		return
	}
	h[name] = []string{value}
}

func hwAddHeaderValue(ctx context.Context, m api.Module, stack []uint64) {
	s, h, name, value := hwHeaderArgs(ctx, m, stack, "add_header_value")
	if uint32(stack[0]) == hwRequest && name == "Host" {
		s.x.Request.Authority = value
		return
	}
	h[name] = append(h[name], value)
}

func hwRemoveHeader(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "remove_header")
	h := s.mutableHeaders(uint32(stack[0]))
	name := hwName(m, stack[1], stack[2])
	if uint32(stack[0]) == hwRequest && name == "Host" {
		s.x.Request.Authority = ""
		return
	}
	delete(h, name)
}

// Body kinds.
const (
	hwRequestBody = iota
	hwResponseBody
)

// hwReadBody reads the next bytes of a body. The request body is pulled
// from the downstream, with the call's deadline paused meanwhile; with
// buffer_request on, what the guest reads still goes upstream. The
// response body is readable in handle_response with buffer_response.
func hwReadBody(ctx context.Context, m api.Module, stack []uint64) {
	v, s := hwStreamOf(ctx, "read_body")
	kind, buf, limit := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if limit == 0 {
		panic(hwTrap("read_body with buf_limit 0"))
	}
	dst, ok := m.Memory().Read(buf, limit)
	if !ok {
		panic(hwTrap("out of memory reading the body"))
	}
	switch kind {
	case hwRequestBody:
		if s.afterNext {
			s.mustBeforeNextOr(featureBufferRequest, "read the request body")
			n := copy(dst, s.reqAfter)
			s.reqAfter = s.reqAfter[n:]
			stack[0] = hwEOFLen(len(s.reqAfter) == 0, n)
			return
		}
		stack[0] = s.readRequest(v, dst)
	case hwResponseBody:
		if !s.afterNext {
			stack[0] = hwEOFLen(true, 0)
			return
		}
		n := copy(dst, s.body[s.bodyOff:])
		s.bodyOff += n
		stack[0] = hwEOFLen(s.bodyOff == len(s.body), n)
	default:
		panic(hwTrap("unknown body kind"))
	}
}

var errHWBodyTooLarge = errors.New("request body larger than the host buffers")

func hwEOFLen(eof bool, n int) uint64 { return b2u(eof)<<32 | uint64(n) }

// readRequest fills dst from the downstream body. A read error (the
// client went away) ends the body for the guest and the stream after
// the call, instead of trapping: a client must not kill an instance.
func (s *hwStream) readRequest(v *hwVM, dst []byte) uint64 {
	if s.reqEOF || s.reqErr != nil || s.x.RequestBody == nil {
		return hwEOFLen(true, 0)
	}
	s.reqTouched = true
	v.deadline.disarm()
	n, err := s.readClient(dst, hwBodyWait*v.pool.opts.CallTimeout)
	v.deadline.arm(v.pool.opts.CallTimeout)
	if errors.Is(err, io.EOF) {
		s.reqEOF, err = true, nil
	}
	if err != nil {
		s.reqErr = err
		return hwEOFLen(true, 0)
	}
	if s.features&featureBufferRequest != 0 {
		if len(s.reqRead)+n > hwMaxBody {
			// The client's doing, not the guest's: the stream gets 413
			// after the call, the instance lives on.
			s.reqErr = errHWBodyTooLarge
			return hwEOFLen(true, 0)
		}
		s.reqRead = append(s.reqRead, dst[:n]...)
	}
	return hwEOFLen(s.reqEOF, n)
}

// hwBodyWait, times the call timeout, bounds how long read_body waits
// for the client to send more: the instance serves no other stream
// meanwhile, so a stalled client gets 408 rather than stall it.
const hwBodyWait = 10

var errHWBodyStalled = errors.New("client stalled sending the request body")

type hwReadResult struct {
	n   int
	err error
}

// readClient reads from the request body what the client has sent, up
// to len(dst) bytes, waiting at most wait for it. The read runs in a
// goroutine of its own, into a buffer of the stream's (a read given up
// on must never write into the guest's memory later), and reads ahead
// so that a guest reading in small chunks costs one wait per chunk of
// the client's, not one per call.
func (s *hwStream) readClient(dst []byte, wait time.Duration) (int, error) {
	if len(s.pending) == 0 && s.pendingErr == nil {
		if cap(s.readBuf) < max(len(dst), hwReadAhead) {
			s.readBuf = make([]byte, max(len(dst), hwReadAhead))
		}
		buf := s.readBuf[:cap(s.readBuf)]
		done := make(chan hwReadResult, 1)
		body := s.x.RequestBody
		go func() {
			n, err := body.Read(buf)
			done <- hwReadResult{n, err}
		}()
		t := time.NewTimer(wait)
		select {
		case r := <-done:
			t.Stop()
			s.pending, s.pendingErr = buf[:r.n], r.err
		case <-t.C:
			// The goroutine still owns buf; the stream ends now.
			s.readBuf = nil
			return 0, errHWBodyStalled
		}
	}
	n := copy(dst, s.pending)
	s.pending = s.pending[n:]
	if len(s.pending) > 0 {
		return n, nil
	}
	err := s.pendingErr
	s.pendingErr = nil
	if err != nil && err != io.EOF {
		return n, err
	}
	if err == io.EOF {
		// Keep answering EOF.
		s.pendingErr = io.EOF
	}
	return n, err
}

// hwReadAhead is the least a read from the client asks for.
const hwReadAhead = 16 << 10

// hwWriteBody writes to a body: the first write of a call replaces it.
// The request body before next; the response body before next (it
// leads the upstream's), or in handle_response with buffer_response.
func hwWriteBody(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "write_body")
	b := hwRead(m, uint32(stack[1]), uint32(stack[2]), "body")
	switch uint32(stack[0]) {
	case hwRequestBody:
		s.mustBeforeNext("write the request body")
		if !s.reqWrote {
			s.reqWrote, s.reqWritten = true, nil
		}
		s.reqWritten = append(s.reqWritten, b...)
	case hwResponseBody:
		if !s.afterNext {
			if !s.respWrote {
				s.respWrote, s.respBody = true, nil
			}
			s.respBody = append(s.respBody, b...)
			return
		}
		s.mustBeforeNextOr(featureBufferResponse, "write the response body")
		if !s.bodyNew {
			s.bodyNew, s.bodyOut = true, nil
		}
		s.bodyOut = append(s.bodyOut, b...)
	default:
		panic(hwTrap("unknown body kind"))
	}
}

func hwGetStatusCode(ctx context.Context, _ api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "get_status_code")
	if s.afterNext && s.x.Response.Status != 0 {
		stack[0] = uint64(s.x.Response.Status)
		return
	}
	stack[0] = uint64(s.statusOr200())
}

func hwSetStatusCode(ctx context.Context, _ api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "set_status_code")
	code := uint32(stack[0])
	// A final status: an informational one cannot end an exchange.
	if code < 200 || code > 999 {
		panic(hwTrap("invalid status code"))
	}
	if !s.afterNext {
		s.status = int(code)
		return
	}
	s.mustBeforeNextOr(featureBufferResponse, "set the status code")
	s.x.Response.Status = int(code)
}

func (s *hwStream) mustBeforeNext(what string) {
	if s.afterNext {
		panic(hwTrap("cannot " + what + " after next"))
	}
}

// mustBeforeNextOr allows what after next only when the stream has
// feature on.
func (s *hwStream) mustBeforeNextOr(feature uint32, what string) {
	if s.afterNext && s.features&feature == 0 {
		panic(hwTrap("cannot " + what + " after next without buffering"))
	}
}

// validToken reports whether s is an HTTP token (a method or a header
// name), RFC 9110 section 5.6.2.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + s + `"`
}
