package wasm

import (
	"bytes"
	"compress/zlib"
	"context"
	"io"

	"github.com/tetratelabs/wazero/api"
)

// Foreign functions: host extensions a plugin calls by name through
// proxy_call_foreign_function. Those of Envoy's that need nothing of
// Envoy's internals are implemented: compress and uncompress (zlib, as
// Envoy's use zlib's compress and uncompress). Any other name is
// NOT_FOUND, as in Envoy.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_call_foreign_function

// maxUncompressed bounds what uncompress inflates, so a small input
// cannot make the host allocate without end.
const maxUncompressed = 16 << 20

var foreignFunctions = map[string]func(arg []byte) ([]byte, status){
	"compress": func(arg []byte) ([]byte, status) {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		if _, err := w.Write(arg); err != nil {
			return nil, statusSerializationFailed
		}
		if err := w.Close(); err != nil {
			return nil, statusSerializationFailed
		}
		return b.Bytes(), statusOK
	},
	"uncompress": func(arg []byte) ([]byte, status) {
		r, err := zlib.NewReader(bytes.NewReader(arg))
		if err != nil {
			return nil, statusSerializationFailed
		}
		out, err := io.ReadAll(io.LimitReader(r, maxUncompressed+1))
		if err != nil || len(out) > maxUncompressed {
			return nil, statusSerializationFailed
		}
		return out, statusOK
	},
}

func init() {
	register("proxy_call_foreign_function", proxyCallForeignFunction, nil)
}

var proxyCallForeignFunction = sf(6, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	name, ok1 := readString(m, u32(s[0]), u32(s[1]))
	arg, ok2 := read(m, u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	fn := foreignFunctions[name]
	if fn == nil {
		return statusNotFound
	}
	out, st := fn(bytes.Clone(arg))
	if st != statusOK {
		return st
	}
	return v.returnBytes(ctx, m, out, u32(s[4]), u32(s[5]))
})
