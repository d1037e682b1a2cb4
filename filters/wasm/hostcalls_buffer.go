package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"

	"github.com/waygate/waygate/filters"
)

// Buffer hostcalls.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#buffers

// stream is the effective context's stream when its exchange may be
// read and changed now: during its own callback, or while it is paused
// and another callback (an http call's answer, a tick) acts for it. A
// stream that went on, or ended, is out of reach.
func (v *vm) stream() *filter {
	s := v.streams[v.active]
	if s == nil || (s != v.calling && !s.paused) {
		return nil
	}
	return s
}

// buffer returns buffer t's bytes and, for a body, the buffer to write.
func (v *vm) buffer(t uint32) ([]byte, *filters.Buffer, status) {
	switch t {
	case bufferRequestBody, bufferResponseBody:
		s := v.stream()
		if s == nil || (s.held && s != v.calling) {
			// A held stream's body is the chain's to fill until its
			// next body callback.
			return nil, nil, statusNotFound
		}
		b := s.reqBody
		if t == bufferResponseBody {
			b = s.respBody
		}
		if b == nil {
			return nil, nil, statusNotFound
		}
		return b.Bytes(), b, statusOK
	case bufferHTTPCallResponse:
		if v.callResp == nil {
			return nil, nil, statusNotFound
		}
		return v.callResp.body, nil, statusOK
	case bufferVMConfiguration:
		return v.pool.cfg.vmConfig, nil, statusOK
	case bufferPluginConfig:
		return v.plugin().cfg.pluginConfig, nil, statusOK
	case bufferGRPCMessage:
		if v.grpcIn == nil || v.grpcIn.msg == nil {
			return nil, nil, statusNotFound
		}
		return v.grpcIn.msg, nil, statusOK
	case 2, 3, 8: // TCP data, foreign function arguments
		return nil, nil, statusNotFound
	}
	return nil, nil, statusBadArgument
}

var proxyGetBufferBytes = sf(5, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	b, _, st := v.buffer(u32(s[0]))
	if st != statusOK {
		return st
	}
	start, max := uint64(u32(s[1])), uint64(u32(s[2]))
	if start > uint64(len(b)) {
		return statusBadArgument
	}
	end := min(start+max, uint64(len(b)))
	return v.returnBytes(ctx, m, b[start:end], u32(s[3]), u32(s[4]))
})

// proxySetBufferBytes replaces size bytes at start with the value:
// start=0 size=0 prepends, start at or past the end appends.
var proxySetBufferBytes = sf(5, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	_, buf, st := v.buffer(u32(s[0]))
	if st != statusOK {
		return st
	}
	if buf == nil {
		return statusBadArgument
	}
	val, ok := read(m, u32(s[3]), u32(s[4]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	cur := buf.Bytes()
	start, size := uint64(u32(s[1])), uint64(u32(s[2]))
	switch {
	case start >= uint64(len(cur)):
		buf.Append(val)
	case start == 0 && size == 0:
		buf.Prepend(val)
	default:
		end := min(start+size, uint64(len(cur)))
		out := make([]byte, 0, uint64(len(cur))-(end-start)+uint64(len(val)))
		out = append(append(append(out, cur[:start]...), val...), cur[end:]...)
		buf.Set(out)
	}
	return statusOK
})

var proxyGetBufferStatus = sf(3, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	b, _, st := v.buffer(u32(s[0]))
	if st != statusOK {
		return st
	}
	if !writeU32(m, u32(s[1]), uint32(len(b))) || !writeU32(m, u32(s[2]), 0) {
		return statusInvalidMemoryAccess
	}
	return statusOK
})

// proxyGetConfiguration is ABI 0.1.0's way to read the plugin
// configuration.
var proxyGetConfiguration = sf(2, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	return v.returnBytes(ctx, m, v.plugin().cfg.pluginConfig, u32(s[0]), u32(s[1]))
})
