package wasm

import (
	"context"
	"log/slog"
	"slices"
	"strings"

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

// hwStreamOf is the instance and the stream whose call is running;
// outside one (the guest's initialization) only features, config and
// logging are available.
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
