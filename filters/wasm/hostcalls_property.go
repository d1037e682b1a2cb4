package wasm

import (
	"bytes"
	"context"

	"github.com/tetratelabs/wazero/api"
)

var proxyGetProperty = sf(4, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	path, ok := readString(m, u32(s[0]), u32(s[1]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	val, found := v.property(path)
	if !found {
		return statusNotFound
	}
	return v.returnBytes(ctx, m, val, u32(s[2]), u32(s[3]))
})

// propertiesNamespace is the dynamic metadata namespace where properties
// set by plugins live for the rest of the stream.
const propertiesNamespace = "envoy.filters.http.wasm.properties"

// proxySetProperty stores a value for the stream, where later reads of
// the same path (by this plugin or another Wasm filter of the stream)
// find it, as Envoy keeps it in the stream's filter state.
var proxySetProperty = sf(4, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	path, ok := readString(m, u32(s[0]), u32(s[1]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	val, ok := read(m, u32(s[2]), u32(s[3]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	st := v.streams[v.active]
	if st == nil {
		return statusNotFound
	}
	st.x.SetMetadata(propertiesNamespace, path, bytes.Clone(val))
	return statusOK
})
