package wasm

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/tetratelabs/wazero/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
)

// grpcCall is a gRPC call or stream a plugin opened. Its goroutine hands
// what arrives to the root context that opened it, as Envoy does; once
// the plugin cancels it (or, for a call, closes it) nothing more is
// delivered.
type grpcCall struct {
	id     uint32
	root   uint32 // the root context that gets the callbacks
	unary  bool
	cancel context.CancelFunc
	conn   *grpc.ClientConn

	// The messages proxy_grpc_send queued for the stream's sender, and
	// whether the plugin half-closed it.
	mu        sync.Mutex
	out       [][]byte
	closeSend bool
	wake      chan struct{}
}

// grpcIn is what a gRPC callback may read: the message (buffer
// GRPC_CALL_MESSAGE), the metadata (maps GRPC_CALL_INITIAL_METADATA and
// GRPC_CALL_TRAILING_METADATA) and, on close, the status.
type grpcIn struct {
	msg              []byte
	initial, trailer http.Header
	code             uint32
	message          string
}

// push queues a message (nil for none) and, with end, the half-close.
func (c *grpcCall) push(msg []byte, end bool) {
	c.mu.Lock()
	if msg != nil {
		c.out = append(c.out, msg)
	}
	c.closeSend = c.closeSend || end
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// send writes the queued messages in order, from its own goroutine:
// flow control may hold a message while the instance serves others.
func (c *grpcCall) send(ctx context.Context, cs grpc.ClientStream) {
	for {
		c.mu.Lock()
		out, end := c.out, c.closeSend
		c.out = nil
		c.mu.Unlock()
		for _, m := range out {
			if cs.SendMsg(&m) != nil {
				return // the receiving side reports the stream's end
			}
		}
		if end {
			cs.CloseSend()
			return
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return
		}
	}
}

var rawCodecOption = grpc.ForceCodec(rawCodec{})

// runUnary makes a call: its answer reaches the plugin through
// proxy_on_grpc_receive, a failure through proxy_on_grpc_close, as in
// Envoy (a call that succeeds is not closed separately).
func (v *vm) runUnary(ctx context.Context, c *grpcCall, method string, msg []byte) {
	defer c.cancel()
	var reply []byte
	err := c.conn.Invoke(ctx, method, &msg, &reply, rawCodecOption)
	if err == nil {
		v.grpcDeliver(c, v.fn.onGRPCReceive, uint64(len(reply)), grpcIn{msg: reply}, true)
		return
	}
	v.grpcClose(c, err)
}

var streamDesc = grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// runStream opens a stream and delivers its initial metadata, each
// message, its trailing metadata and its close.
func (v *vm) runStream(ctx context.Context, c *grpcCall, method string) {
	defer c.cancel()
	cs, err := c.conn.NewStream(ctx, &streamDesc, method, rawCodecOption)
	if err != nil {
		v.grpcClose(c, err)
		return
	}
	go c.send(ctx, cs)
	if md, err := cs.Header(); err == nil && md != nil {
		h := headerOf(md)
		if !v.grpcDeliver(c, v.fn.onGRPCInitialMetadata, uint64(pairCount(h)), grpcIn{initial: h}, false) {
			return
		}
	}
	for {
		var m []byte
		if err = cs.RecvMsg(&m); err != nil {
			break
		}
		if !v.grpcDeliver(c, v.fn.onGRPCReceive, uint64(len(m)), grpcIn{msg: m}, false) {
			return
		}
	}
	if md := cs.Trailer(); len(md) > 0 {
		h := headerOf(md)
		if !v.grpcDeliver(c, v.fn.onGRPCTrailingMetadata, uint64(pairCount(h)), grpcIn{trailer: h}, false) {
			return
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	v.grpcClose(c, err)
}

// grpcClose ends a call or stream with err's status (nil is OK).
func (v *vm) grpcClose(c *grpcCall, err error) {
	st := grpcstatus.Convert(err)
	if errors.Is(err, context.DeadlineExceeded) {
		st = grpcstatus.New(codes.DeadlineExceeded, err.Error())
	}
	v.grpcDeliver(c, v.fn.onGRPCClose, uint64(st.Code()), grpcIn{code: uint32(st.Code()), message: st.Message()}, true)
}

// grpcDeliver runs callback f on the call's root context, unless the
// plugin let go of the call (or was unloaded) or the instance died; it
// reports whether the call is still wanted. last removes the call first.
func (v *vm) grpcDeliver(c *grpcCall, f api.Function, arg uint64, in grpcIn, last bool) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead.Load() || v.grpc[c.id] != c || v.rootByID[c.root] == nil {
		c.cancel()
		return false
	}
	if last {
		delete(v.grpc, c.id)
	}
	if f == nil {
		return true
	}
	v.grpcIn = &in
	v.enterRoot(c.root)
	v.stack[0], v.stack[1], v.stack[2] = uint64(c.root), uint64(c.id), arg
	_, err := v.invoke(f)
	v.grpcIn = nil
	return err == nil
}

// cancelGRPC stops every call of a dying instance. v.mu is held.
func (v *vm) cancelGRPC() {
	for id, c := range v.grpc {
		c.cancel()
		delete(v.grpc, id)
	}
}

// headerOf is gRPC metadata as a header map the field hostcalls read.
func headerOf(md metadata.MD) http.Header {
	h := make(http.Header, len(md))
	for k, vs := range md {
		for _, val := range vs {
			h.Add(k, val)
		}
	}
	return h
}

func pairCount(h http.Header) int {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	return n
}
