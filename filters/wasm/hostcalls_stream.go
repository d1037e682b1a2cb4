package wasm

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/waygate/waygate/filters"
)

// Stream control hostcalls.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#common-http-and-tcp-stream-operations

// proxySendLocalResponse ends the stream with the plugin's response. The
// stream's goroutine sends it once the callback returns, or wakes up to
// send it when the stream is paused and another callback (an http
// call's answer) decided.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_send_local_response
var proxySendLocalResponse = sf(8, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	st := v.stream()
	if st == nil {
		return statusNotFound
	}
	details, ok1 := readString(m, u32(s[1]), u32(s[2]))
	body, ok2 := readString(m, u32(s[3]), u32(s[4]))
	hb, ok3 := read(m, u32(s[5]), u32(s[6]))
	if !ok1 || !ok2 || !ok3 {
		return statusInvalidMemoryAccess
	}
	r := filters.LocalReply{Status: int(u32(s[0])), Body: body, Details: details}
	if r.Details == "" {
		r.Details = "wasm_local_reply"
	}
	if len(hb) > 0 {
		r.Header = http.Header{}
		if err := decodeMap(hb, func(k, v []byte) {
			r.Header.Add(string(k), string(v))
		}); err != nil {
			return statusBadArgument
		}
	}
	// grpc_status -1 means none; a gRPC request gets its status in a
	// grpc-status header, as Envoy's local replies carry it.
	if g := int32(u32(s[7])); g >= 0 && g <= 16 && strings.HasPrefix(st.x.Request.Header.Get("Content-Type"), "application/grpc") {
		if r.Header == nil {
			r.Header = http.Header{}
		}
		r.Header.Set("Grpc-Status", strconv.Itoa(int(g)))
	}
	st.reply = &r
	st.wakeUp()
	return statusOK
})

func continueStream(v *vm, t uint32) status {
	switch t {
	case streamRequest, streamResponse:
	case 2, 3:
		return statusUnimplemented
	default:
		return statusBadArgument
	}
	s := v.streams[v.active]
	if s == nil {
		return statusNotFound
	}
	s.resume = true
	s.wakeUp()
	return statusOK
}

var proxyContinueStream = sf(1, func(_ context.Context, v *vm, _ api.Module, s []uint64) status {
	return continueStream(v, u32(s[0]))
})

// proxyContinueRequest and proxyContinueResponse are ABI 0.1.0's names.
var proxyContinueRequest = sf(0, func(_ context.Context, v *vm, _ api.Module, _ []uint64) status {
	return continueStream(v, streamRequest)
})

var proxyContinueResponse = sf(0, func(_ context.Context, v *vm, _ api.Module, _ []uint64) status {
	return continueStream(v, streamResponse)
})

// proxyCloseStream resets the stream without a response.
var proxyCloseStream = sf(1, func(_ context.Context, v *vm, _ api.Module, s []uint64) status {
	if t := u32(s[0]); t > 3 {
		return statusBadArgument
	}
	st := v.streams[v.active]
	if st == nil {
		return statusNotFound
	}
	st.reset = true
	st.wakeUp()
	return statusOK
})

var proxyClearRouteCache = sf(0, func(_ context.Context, v *vm, _ api.Module, _ []uint64) status {
	if s := v.stream(); s != nil {
		s.x.ClearRouteCache()
	}
	return statusOK
})

// proxySetEffectiveContext lets a root-context callback act for a
// stream, as an http call's answer does for the stream that made it.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_set_effective_context
var proxySetEffectiveContext = sf(1, func(_ context.Context, v *vm, _ api.Module, s []uint64) status {
	if !v.setActive(u32(s[0])) {
		return statusBadArgument
	}
	return statusOK
})

// proxyDone tells the host that a root context whose proxy_on_done
// returned false is done: it is deleted (proxy_on_delete) once the
// running callback returns, as Envoy posts it. Any other context is
// NOT_FOUND.
var proxyDone = sf(0, func(_ context.Context, v *vm, _ api.Module, _ []uint64) status {
	r := v.rootByID[v.active]
	if r == nil || !r.draining {
		return statusNotFound
	}
	r.draining = false
	go func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if !v.dead.Load() && v.rootByID[r.id] == r {
			v.deleteRoot(r)
		}
	}()
	return statusOK
})
