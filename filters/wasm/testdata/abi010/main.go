// Command abi010 is a Proxy-Wasm plugin of ABI 0.1.0, as the oldest
// SDKs build them: it exports proxy_abi_version_0_1_0 and malloc (not
// proxy_on_memory_allocate), its header callbacks take no end_of_stream
// argument, and it reads its configuration with proxy_get_configuration.
// It adds the configuration to the request as x-abi010-config, the
// status and length of a missing header's value as x-missing-status, and
// answers with x-abi010 on the response.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
package main

import "unsafe"

//go:wasmimport env proxy_get_configuration
func proxyGetConfiguration(ptr, size unsafe.Pointer) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(typ uint32, key unsafe.Pointer, keySize uint32, ptr, size unsafe.Pointer) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(typ uint32, key unsafe.Pointer, keySize uint32, val unsafe.Pointer, valSize uint32) uint32

var (
	kept   [][]byte
	config string
)

//go:wasmexport proxy_abi_version_0_1_0
func proxyABIVersion() {}

//go:wasmexport malloc
func malloc(size uint32) unsafe.Pointer {
	b := make([]byte, size)
	kept = append(kept, b)
	return unsafe.Pointer(unsafe.SliceData(b))
}

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(id, parent uint32) {}

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(id, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_configure
func proxyOnConfigure(id, size uint32) uint32 {
	var p unsafe.Pointer
	var n uint32
	if proxyGetConfiguration(unsafe.Pointer(&p), unsafe.Pointer(&n)) != 0 {
		return 0
	}
	config = string(unsafe.Slice((*byte)(p), n))
	kept = nil
	return 1
}

func add(typ uint32, k, v string) {
	proxyAddHeaderMapValue(typ, unsafe.Pointer(unsafe.StringData(k)), uint32(len(k)), unsafe.Pointer(unsafe.StringData(v)), uint32(len(v)))
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(id, headers uint32) uint32 {
	add(0, "x-abi010-config", config)
	// A missing header reads as empty under ABI 0.1.0.
	k := "x-missing"
	p, n := unsafe.Pointer(&k), uint32(7)
	st := proxyGetHeaderMapValue(0, unsafe.Pointer(unsafe.StringData(k)), uint32(len(k)), unsafe.Pointer(&p), unsafe.Pointer(&n))
	add(0, "x-missing-status", string(rune('0'+st))+" "+string(rune('0'+n)))
	return 0
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(id, headers uint32) uint32 {
	add(2, "x-abi010", "yes")
	return 0
}

//go:wasmexport proxy_on_done
func proxyOnDone(id uint32) uint32 { return 1 }

//go:wasmexport proxy_on_delete
func proxyOnDelete(id uint32) {}

func main() {}
