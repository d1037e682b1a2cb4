package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// Header map hostcalls.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#http-fields

var proxyGetHeaderMapPairs = sf(3, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	f, st := v.headerMap(u32(s[0]))
	if st != statusOK {
		return st
	}
	v.scratch = encodeMap(v.scratch, f.all())
	return v.returnBytes(ctx, m, v.scratch, u32(s[1]), u32(s[2]))
})

var proxyGetHeaderMapSize = sf(2, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	f, st := v.headerMap(u32(s[0]))
	if st != statusOK {
		return st
	}
	v.scratch = encodeMap(v.scratch, f.all())
	if !writeU32(m, u32(s[1]), uint32(len(v.scratch))) {
		return statusInvalidMemoryAccess
	}
	return statusOK
})

var proxySetHeaderMapPairs = sf(3, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	f, st := v.headerMap(u32(s[0]))
	if st != statusOK {
		return st
	}
	b, ok := read(m, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	return f.replaceAll(b)
})

var proxyGetHeaderMapValue = sf(5, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	f, st := v.headerMap(u32(s[0]))
	if st != statusOK {
		return st
	}
	k, ok := readString(m, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	val, found := f.first(k)
	if !found {
		if v.pool.engine.abi == abiVersions[2] {
			// ABI 0.1.0 reads a missing field as empty, as Envoy
			// answers plugins of that ABI.
			return v.returnBytes(ctx, m, nil, u32(s[3]), u32(s[4]))
		}
		return statusNotFound
	}
	v.scratch = append(v.scratch[:0], val...)
	return v.returnBytes(ctx, m, v.scratch, u32(s[3]), u32(s[4]))
})

func setHeaderValue(replace bool) statusFunc {
	return sf(5, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
		f, st := v.headerMap(u32(s[0]))
		if st != statusOK {
			return st
		}
		k, ok := readString(m, u32(s[1]), u32(s[2]))
		if !ok {
			return statusInvalidMemoryAccess
		}
		val, ok := readString(m, u32(s[3]), u32(s[4]))
		if !ok {
			return statusInvalidMemoryAccess
		}
		return f.set(k, val, replace)
	})
}

var (
	proxyAddHeaderMapValue     = setHeaderValue(false)
	proxyReplaceHeaderMapValue = setHeaderValue(true)
)

var proxyRemoveHeaderMapValue = sf(3, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	f, st := v.headerMap(u32(s[0]))
	if st != statusOK {
		return st
	}
	k, ok := readString(m, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	return f.remove(k)
})
