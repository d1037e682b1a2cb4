package main

import (
	"strings"
	"unsafe"
)

// The http_handler host functions, imported by hand as any guest
// without an SDK does. https://http-wasm.io/http-handler-abi/

//go:wasmimport http_handler enable_features
func enableFeatures(features uint32) uint32

//go:wasmimport http_handler get_config
func getConfig(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler log_enabled
func logEnabled(level int32) uint32

//go:wasmimport http_handler log
func logMessage(level int32, msg unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_method
func getMethod(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler set_method
func setMethod(p unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_uri
func getURI(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler set_uri
func setURI(p unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_protocol_version
func getProtocolVersion(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler get_source_addr
func getSourceAddr(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler get_header_names
func getHeaderNames(kind uint32, buf unsafe.Pointer, limit uint32) uint64

//go:wasmimport http_handler get_header_values
func getHeaderValues(kind uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, limit uint32) uint64

//go:wasmimport http_handler set_header_value
func setHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler add_header_value
func addHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler remove_header
func removeHeader(kind uint32, name unsafe.Pointer, nameLen uint32)

//go:wasmimport http_handler read_body
func readBody(kind uint32, buf unsafe.Pointer, limit uint32) uint64

//go:wasmimport http_handler write_body
func writeBody(kind uint32, p unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_status_code
func getStatusCode() uint32

//go:wasmimport http_handler set_status_code
func setStatusCode(code uint32)

// futureFunction is not in the ABI the host implements: the guest
// links, and calling it traps.
//
//go:wasmimport http_handler future_function
func futureFunction() uint32

const (
	featureBufferRequest  = 1
	featureBufferResponse = 2
	featureTrailers       = 4

	kindRequest          = 0
	kindResponse         = 1
	kindRequestTrailers  = 2
	kindResponseTrailers = 3
)

func sp(s string) (unsafe.Pointer, uint32) {
	if s == "" {
		return nil, 0
	}
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func bp(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// field reads a value with get: the length first, then the bytes.
func field(get func(unsafe.Pointer, uint32) uint32) string {
	n := get(nil, 0)
	if n == 0 {
		return ""
	}
	b := make([]byte, n)
	get(bp(b), n)
	return string(b)
}

func list(get func(unsafe.Pointer, uint32) uint64) []string {
	n := uint32(get(nil, 0))
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	get(bp(b), n)
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func config() string  { return field(getConfig) }
func method() string  { return field(getMethod) }
func uri() string     { return field(getURI) }
func proto() string   { return field(getProtocolVersion) }
func srcAddr() string { return field(getSourceAddr) }

func names(kind uint32) []string {
	return list(func(b unsafe.Pointer, l uint32) uint64 { return getHeaderNames(kind, b, l) })
}

func values(kind uint32, name string) []string {
	p, n := sp(name)
	return list(func(b unsafe.Pointer, l uint32) uint64 { return getHeaderValues(kind, p, n, b, l) })
}

func header(kind uint32, name string) string {
	if v := values(kind, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func setHeader(kind uint32, name, value string) {
	np, nn := sp(name)
	vp, vn := sp(value)
	setHeaderValue(kind, np, nn, vp, vn)
}

func addHeader(kind uint32, name, value string) {
	np, nn := sp(name)
	vp, vn := sp(value)
	addHeaderValue(kind, np, nn, vp, vn)
}

func delHeader(kind uint32, name string) {
	p, n := sp(name)
	removeHeader(kind, p, n)
}

// body reads a whole body in chunks of size.
func body(kind uint32, size int) string {
	var out []byte
	buf := make([]byte, size)
	for {
		r := readBody(kind, bp(buf), uint32(size))
		out = append(out, buf[:uint32(r)]...)
		if r>>32 == 1 {
			return string(out)
		}
	}
}

func write(kind uint32, s string) {
	p, n := sp(s)
	writeBody(kind, p, n)
}

func logf(level int32, s string) {
	p, n := sp(s)
	logMessage(level, p, n)
}
