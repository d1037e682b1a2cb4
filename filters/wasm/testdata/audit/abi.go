// Command audit is a Proxy-Wasm test plugin written against the raw ABI
// with standard Go only. It reads the properties a request names and
// calls every hostcall with pointers outside its memory, reporting what
// the host answered, so tests check attribute encodings and bounds
// checks byte for byte, with no SDK decoding in between.
//
// Pointers are passed as plain uint32 so the plugin can pass any value.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
package main

import "unsafe"

//go:wasmimport env proxy_log
func proxyLog(level, msg, size uint32) uint32

//go:wasmimport env proxy_get_log_level
func proxyGetLogLevel(ptr uint32) uint32

//go:wasmimport env proxy_get_current_time_nanoseconds
func proxyGetCurrentTimeNanoseconds(ptr uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(typ, start, max, ptr, size uint32) uint32

//go:wasmimport env proxy_get_buffer_status
func proxyGetBufferStatus(typ, size, flags uint32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(typ, start, size, val, valSize uint32) uint32

//go:wasmimport env proxy_get_configuration
func proxyGetConfiguration(ptr, size uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(typ, ptr, size uint32) uint32

//go:wasmimport env proxy_get_header_map_size
func proxyGetHeaderMapSize(typ, size uint32) uint32

//go:wasmimport env proxy_set_header_map_pairs
func proxySetHeaderMapPairs(typ, ptr, size uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(typ, key, keySize, ptr, size uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(typ, key, keySize, val, valSize uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(typ, key, keySize, val, valSize uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(typ, key, keySize uint32) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(path, pathSize, ptr, size uint32) uint32

//go:wasmimport env proxy_set_property
func proxySetProperty(path, pathSize, val, valSize uint32) uint32

//go:wasmimport env proxy_get_shared_data
func proxyGetSharedData(key, keySize, ptr, size, cas uint32) uint32

//go:wasmimport env proxy_set_shared_data
func proxySetSharedData(key, keySize, val, valSize, cas uint32) uint32

//go:wasmimport env proxy_register_shared_queue
func proxyRegisterSharedQueue(name, nameSize, token uint32) uint32

//go:wasmimport env proxy_resolve_shared_queue
func proxyResolveSharedQueue(vm, vmSize, name, nameSize, token uint32) uint32

//go:wasmimport env proxy_enqueue_shared_queue
func proxyEnqueueSharedQueue(token, val, valSize uint32) uint32

//go:wasmimport env proxy_dequeue_shared_queue
func proxyDequeueSharedQueue(token, ptr, size uint32) uint32

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(typ, name, nameSize, id uint32) uint32

//go:wasmimport env proxy_get_metric
func proxyGetMetric(id, ptr uint32) uint32

//go:wasmimport env proxy_http_call
func proxyHTTPCall(up, upSize, hdr, hdrSize, body, bodySize, trl, trlSize, timeout, token uint32) uint32

//go:wasmimport env proxy_grpc_call
func proxyGRPCCall(up, upSize, svc, svcSize, method, methodSize, md, mdSize, msg, msgSize, timeout, token uint32) uint32

//go:wasmimport env proxy_grpc_stream
func proxyGRPCStream(up, upSize, svc, svcSize, method, methodSize, md, mdSize, token uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(code, details, detailsSize, body, bodySize, hdr, hdrSize, grpc uint32) uint32

//go:wasmimport env proxy_call_foreign_function
func proxyCallForeignFunction(name, nameSize, arg, argSize, ptr, size uint32) uint32

// bad is an address past any memory the host grants a plugin.
const bad = 0xFFFFFFF0

// kept holds the memory handed to the host until the next callback.
var kept [][]byte

//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) uint32 {
	b := make([]byte, size)
	kept = append(kept, b)
	return addr(b)
}

func enter() { clear(kept); kept = kept[:0] }

// keep returns a copy of b the host may read until the next callback.
func keep(b []byte) []byte {
	c := append([]byte(nil), b...)
	kept = append(kept, c)
	return c
}

func addr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// str is a string's address and length, for the host to read.
func str(s string) (uint32, uint32) {
	b := keep([]byte(s))
	return addr(b), uint32(len(b))
}

// out is room for a hostcall's returned pointer and size.
func out() (uint32, uint32, *[2]uint32) {
	p := keep(make([]byte, 8))
	return addr(p), addr(p) + 4, (*[2]uint32)(unsafe.Pointer(unsafe.SliceData(p)))
}

// returned is what a hostcall wrote through the pair o.
func returned(o *[2]uint32) []byte {
	if o[0] == 0 || o[1] == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(uintptr(o[0]))), o[1])...)
}

func main() {}

func unsafePointer(a uint32) unsafe.Pointer { return unsafe.Pointer(uintptr(a)) }

//go:wasmimport env proxy_continue_stream
func proxyContinueStream(typ uint32) uint32

//go:wasmimport env proxy_close_stream
func proxyCloseStream(typ uint32) uint32

//go:wasmimport env proxy_continue_response
func proxyContinueResponse() uint32

//go:wasmimport env proxy_continue_request
func proxyContinueRequest() uint32

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(id uint32) uint32

//go:wasmimport env proxy_clear_route_cache
func proxyClearRouteCache() uint32

//go:wasmimport env proxy_done
func proxyDone() uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, delta int64) uint32

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(id uint32, value uint64) uint32

// proxy_no_such_hostcall is no hostcall of any ABI: the host links it
// to a stub returning UNIMPLEMENTED.
//
//go:wasmimport env proxy_no_such_hostcall
func proxyNoSuchHostcall(arg uint32) uint32
