package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// Guest memory access. Every pointer and length a plugin passes is
// checked against its linear memory: a bad one makes the hostcall return
// INVALID_MEMORY_ACCESS, as the spec asks, and never panics the host.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#memory-management

// read returns a view of size bytes at ptr. The view aliases guest
// memory: it is valid until the guest runs again (a call to its
// allocator may move or grow memory), so callers copy what they keep.
func read(m api.Module, ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	return m.Memory().Read(ptr, size)
}

// readString copies size bytes at ptr into a string.
func readString(m api.Module, ptr, size uint32) (string, bool) {
	b, ok := read(m, ptr, size)
	return string(b), ok
}

func writeU32(m api.Module, ptr, v uint32) bool { return m.Memory().WriteUint32Le(ptr, v) }

func writeU64(m api.Module, ptr uint32, v uint64) bool { return m.Memory().WriteUint64Le(ptr, v) }

// returnBytes copies data into memory the guest allocates and stores the
// address and length at ptrPtr and sizePtr, the way every hostcall
// returning a value does. Empty data returns a null pointer and zero
// length without calling the allocator.
func (v *vm) returnBytes(ctx context.Context, m api.Module, data []byte, ptrPtr, sizePtr uint32) status {
	var addr uint32
	if len(data) > 0 {
		var err error
		addr, err = v.alloc(ctx, uint32(len(data)))
		if err != nil {
			return statusInternalFailure
		}
		if !m.Memory().Write(addr, data) {
			return statusInvalidMemoryAccess
		}
	}
	if !writeU32(m, ptrPtr, addr) || !writeU32(m, sizePtr, uint32(len(data))) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// alloc asks the guest for size bytes, through proxy_on_memory_allocate
// or malloc, whichever it exports.
func (v *vm) alloc(ctx context.Context, size uint32) (uint32, error) {
	v.allocStack[0] = uint64(size)
	if err := v.fn.malloc.CallWithStack(ctx, v.allocStack[:]); err != nil {
		return 0, err
	}
	addr := uint32(v.allocStack[0])
	if addr == 0 {
		return 0, errAllocFailed
	}
	return addr, nil
}
