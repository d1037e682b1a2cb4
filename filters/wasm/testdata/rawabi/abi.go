// Command rawabi is a Proxy-Wasm test plugin written against the raw ABI
// with standard Go only (go:wasmimport and go:wasmexport), with no SDK
// between the host and the plugin. It exercises what the SDK used by
// the other test plugins lacks (gRPC calls, several root contexts in one
// VM), and its no-op mode measures the host's cost per request apart
// from an SDK's.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
package main

import "unsafe"

// Hostcalls, as https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1 declares them.

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(typ, start, max uint32, ptr, size unsafe.Pointer) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(typ uint32, key unsafe.Pointer, keySize uint32, ptr, size unsafe.Pointer) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(typ uint32, key unsafe.Pointer, keySize uint32, val unsafe.Pointer, valSize uint32) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(path unsafe.Pointer, pathSize uint32, ptr, size unsafe.Pointer) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(code uint32, details unsafe.Pointer, detailsSize uint32, body unsafe.Pointer, bodySize uint32, headers unsafe.Pointer, headersSize uint32, grpcStatus int32) uint32

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(id uint32) uint32

//go:wasmimport env proxy_get_status
func proxyGetStatus(code, ptr, size unsafe.Pointer) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTickPeriodMilliseconds(ms uint32) uint32

//go:wasmimport env proxy_grpc_call
func proxyGRPCCall(up unsafe.Pointer, upSize uint32, svc unsafe.Pointer, svcSize uint32, method unsafe.Pointer, methodSize uint32, md unsafe.Pointer, mdSize uint32, msg unsafe.Pointer, msgSize uint32, timeout uint32, id unsafe.Pointer) uint32

//go:wasmimport env proxy_grpc_stream
func proxyGRPCStream(up unsafe.Pointer, upSize uint32, svc unsafe.Pointer, svcSize uint32, method unsafe.Pointer, methodSize uint32, md unsafe.Pointer, mdSize uint32, id unsafe.Pointer) uint32

//go:wasmimport env proxy_grpc_send
func proxyGRPCSend(id uint32, msg unsafe.Pointer, msgSize uint32, end uint32) uint32

//go:wasmimport env proxy_grpc_cancel
func proxyGRPCCancel(id uint32) uint32

//go:wasmimport env proxy_grpc_close
func proxyGRPCClose(id uint32) uint32

// Map and buffer types used here.
const (
	mapRequestHeaders       = 0
	mapGRPCInitialMetadata  = 4
	mapGRPCTrailingMetadata = 5
	bufferGRPCMessage       = 5
	bufferPluginConfig      = 7
)

// kept holds the memory handed to the host until the next callback: the
// host writes into it during a hostcall and the plugin reads it before
// returning.
var kept [][]byte

//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) unsafe.Pointer {
	b := make([]byte, size)
	kept = append(kept, b)
	return unsafe.Pointer(unsafe.SliceData(b))
}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func sptr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

// returned is the bytes a hostcall returned through its pointer pair.
func returned(p unsafe.Pointer, size uint32) []byte {
	if p == nil || size == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(p), size)...)
}

func logError(msg string) { proxyLog(4, sptr(msg), uint32(len(msg))) }

func bufferBytes(typ, size uint32) []byte {
	var p unsafe.Pointer
	var n uint32
	if proxyGetBufferBytes(typ, 0, size, unsafe.Pointer(&p), unsafe.Pointer(&n)) != 0 {
		return nil
	}
	return returned(p, n)
}

func headerValue(typ uint32, key string) (string, bool) {
	var p unsafe.Pointer
	var n uint32
	if proxyGetHeaderMapValue(typ, sptr(key), uint32(len(key)), unsafe.Pointer(&p), unsafe.Pointer(&n)) != 0 {
		return "", false
	}
	return string(returned(p, n)), true
}

func addHeader(typ uint32, key, val string) {
	proxyAddHeaderMapValue(typ, sptr(key), uint32(len(key)), sptr(val), uint32(len(val)))
}

func property(path string) string {
	var p unsafe.Pointer
	var n uint32
	if proxyGetProperty(sptr(path), uint32(len(path)), unsafe.Pointer(&p), unsafe.Pointer(&n)) != 0 {
		return ""
	}
	return string(returned(p, n))
}

func respond(code uint32, body string) {
	proxySendLocalResponse(code, nil, 0, sptr(body), uint32(len(body)), nil, 0, -1)
}

// encodeMap serializes pairs in the ABI's map form.
func encodeMap(kv ...string) []byte {
	n := len(kv) / 2
	b := make([]byte, 4+8*n)
	put := func(at int, v uint32) {
		b[at], b[at+1], b[at+2], b[at+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	put(0, uint32(n))
	for i := 0; i < n; i++ {
		put(4+8*i, uint32(len(kv[2*i])))
		put(8+8*i, uint32(len(kv[2*i+1])))
	}
	for i := 0; i < n; i++ {
		b = append(append(b, kv[2*i]...), 0)
		b = append(append(b, kv[2*i+1]...), 0)
	}
	return b
}

func main() {}
