package wasm

import (
	"bytes"
	"context"
	"time"

	"github.com/tetratelabs/wazero/api"
	"google.golang.org/grpc/metadata"

	"github.com/waygate/waygate/filters"
)

// gRPC call hostcalls.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#grpc-calls

func init() {
	register("proxy_grpc_call", proxyGRPCCall, nil)
	register("proxy_grpc_stream", proxyGRPCStream, nil)
	register("proxy_grpc_send", proxyGRPCSend, nil)
	register("proxy_grpc_cancel", proxyGRPCCancel, nil)
	register("proxy_grpc_close", proxyGRPCClose, nil)
	register("proxy_get_status", proxyGetStatus, nil)
}

// grpcOpen reads the arguments common to a call and a stream (upstream,
// service, method, initial metadata), and starts the call's context:
// the call's own timeout, else the GrpcService's, else none (a stream
// lasts until it ends or the plugin cancels it).
func (v *vm) grpcOpen(m api.Module, s []uint64, timeout time.Duration, unary bool) (*grpcCall, context.Context, string, status) {
	up, ok1 := read(m, u32(s[0]), u32(s[1]))
	svc, ok2 := readString(m, u32(s[2]), u32(s[3]))
	method, ok3 := readString(m, u32(s[4]), u32(s[5]))
	mdb, ok4 := read(m, u32(s[6]), u32(s[7]))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, nil, "", statusInvalidMemoryAccess
	}
	t, err := parseGRPCTarget(up)
	if err != nil {
		return nil, nil, "", statusParseFailure
	}
	if t.byName && filters.ClusterMissing(v.pool.env.Upstream, t.cluster) {
		// Envoy refuses a call naming a cluster it does not have at
		// once, with PARSE_FAILURE; a GrpcService naming one is
		// accepted, and its call fails when sent (UNAVAILABLE).
		return nil, nil, "", statusParseFailure
	}
	if svc == "" || method == "" {
		return nil, nil, "", statusBadArgument
	}
	md := metadata.MD{}
	for _, kv := range t.metadata {
		md.Append(kv[0], kv[1])
	}
	if decodeMap(mdb, func(k, val []byte) { md.Append(string(k), string(val)) }) != nil {
		return nil, nil, "", statusBadArgument
	}
	conn, err := v.pool.grpc.conn(t, v.pool.env.Upstream)
	if err != nil {
		v.log.Debug("wasm grpc call refused", "upstream", t.cluster+t.uri, "error", err)
		return nil, nil, "", statusInternalFailure
	}
	if timeout <= 0 {
		timeout = t.timeout
	}
	ctx := metadata.NewOutgoingContext(context.Background(), md)
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	v.nextCallID++
	c := &grpcCall{id: v.nextCallID, root: v.rootOfActive(), unary: unary, cancel: cancel, wake: make(chan struct{}, 1)}
	if v.grpc == nil {
		v.grpc = map[uint32]*grpcCall{}
	}
	v.grpc[c.id] = c
	c.conn = conn
	return c, ctx, "/" + svc + "/" + method, statusOK
}

// proxyGRPCCall sends one message and returns at once; the answer comes
// to the root context that made the call.
var proxyGRPCCall = sf(12, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	msg, ok := read(m, u32(s[8]), u32(s[9]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	c, ctx, method, st := v.grpcOpen(m, s, time.Duration(u32(s[10]))*time.Millisecond, true)
	if st != statusOK {
		return st
	}
	if !writeU32(m, u32(s[11]), c.id) {
		v.dropGRPC(c)
		return statusInvalidMemoryAccess
	}
	go v.runUnary(ctx, c, method, bytes.Clone(msg))
	return statusOK
})

// proxyGRPCStream opens a stream; messages go with proxy_grpc_send.
var proxyGRPCStream = sf(9, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	c, ctx, method, st := v.grpcOpen(m, s, 0, false)
	if st != statusOK {
		return st
	}
	if !writeU32(m, u32(s[8]), c.id) {
		v.dropGRPC(c)
		return statusInvalidMemoryAccess
	}
	go v.runStream(ctx, c, method)
	return statusOK
})

var proxyGRPCSend = sf(4, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	c := v.grpc[u32(s[0])]
	if c == nil {
		return statusNotFound
	}
	if c.unary {
		return statusBadArgument
	}
	msg, ok := read(m, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	c.push(bytes.Clone(msg), u32(s[3]) != 0)
	return statusOK
})

// proxyGRPCCancel drops a call or stream: it is reset and nothing more
// of it reaches the plugin.
var proxyGRPCCancel = sf(1, func(_ context.Context, v *vm, _ api.Module, s []uint64) status {
	c := v.grpc[u32(s[0])]
	if c == nil {
		return statusNotFound
	}
	v.dropGRPC(c)
	return statusOK
})

// proxyGRPCClose ends the plugin's side: a call is dropped, as Envoy
// does; a stream is half-closed, and its answers and close still come.
var proxyGRPCClose = sf(1, func(_ context.Context, v *vm, _ api.Module, s []uint64) status {
	c := v.grpc[u32(s[0])]
	if c == nil {
		return statusNotFound
	}
	if c.unary {
		v.dropGRPC(c)
	} else {
		c.push(nil, true)
	}
	return statusOK
})

func (v *vm) dropGRPC(c *grpcCall) {
	delete(v.grpc, c.id)
	c.cancel()
}

// proxyGetStatus is a gRPC call's status during proxy_on_grpc_close, or
// an http call's HTTP status during proxy_on_http_call_response.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_get_status
var proxyGetStatus = sf(3, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	var code uint32
	var msg string
	switch {
	case v.grpcIn != nil:
		code, msg = v.grpcIn.code, v.grpcIn.message
	case v.callResp != nil:
		code = uint32(v.callResp.status)
	default:
		return statusNotFound
	}
	if !writeU32(m, u32(s[0]), code) {
		return statusInvalidMemoryAccess
	}
	return v.returnBytes(ctx, m, []byte(msg), u32(s[1]), u32(s[2]))
})

// headerMap is map t of the running callback: a gRPC call's metadata,
// else a stream's or an http call's fields.
func (v *vm) headerMap(t uint32) (fieldMap, status) {
	switch t {
	case mapGRPCInitialMetadata, mapGRPCTrailingMetadata:
		in := v.grpcIn
		if in == nil {
			return fieldMap{}, statusNotFound
		}
		h := &in.initial
		if t == mapGRPCTrailingMetadata {
			h = &in.trailer
		}
		if *h == nil {
			return fieldMap{}, statusNotFound
		}
		return fieldMap{h: h, readOnly: true}, statusOK
	}
	return v.fields(t)
}
