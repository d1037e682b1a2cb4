package wasm

import (
	"context"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/waygate/waygate/filters"
)

// TCP connections reach the plugin through the same hostcalls as HTTP
// streams; these take the calls that mean something else, or only
// something, for a connection's context (the TCP data buffers, the
// downstream and upstream stream types, the upstream's properties) and
// leave the rest to the HTTP host.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#buffers

// Buffer and stream types of TCP connections.
const (
	bufferDownstreamData uint32 = 2
	bufferUpstreamData   uint32 = 3
	streamDownstream     uint32 = 2
	streamUpstream       uint32 = 3
)

func init() {
	// hostcalls.go's init, which fills the table, runs first: files
	// are initialized in the order of their names.
	wrapHostcall("proxy_get_buffer_bytes", netGetBufferBytes)
	wrapHostcall("proxy_set_buffer_bytes", netSetBufferBytes)
	wrapHostcall("proxy_get_buffer_status", netGetBufferStatus)
	wrapHostcall("proxy_continue_stream", netContinueStream)
	wrapHostcall("proxy_close_stream", netCloseStream)
	wrapHostcall("proxy_get_property", netGetProperty)
}

// netHostcall handles a hostcall for a connection's context; handled
// false passes it to the HTTP host.
type netHostcall func(ctx context.Context, v *vm, m api.Module, stack []uint64) (st status, handled bool)

func wrapHostcall(name string, fn netHostcall) {
	inner, ok := hostcalls[name]
	if !ok {
		panic("wasm: network hostcall " + name + " wraps nothing")
	}
	hostcalls[name] = hostcall{
		params:  inner.params,
		results: inner.results,
		fn: func(ctx context.Context, m api.Module, stack []uint64) {
			if st, handled := fn(ctx, vmOf(ctx), m, stack); handled {
				stack[0] = uint64(st)
				return
			}
			inner.fn(ctx, m, stack)
		},
	}
}

// netBuffer is TCP data buffer t of the running callback. A buffer type
// of TCP data is always handled: outside a connection's data callback
// it is NOT_FOUND.
func (v *vm) netBuffer(t uint32) (*filters.Buffer, status) {
	n := netOf(v.stream())
	if n == nil {
		return nil, statusNotFound
	}
	b := n.data[t-bufferDownstreamData]
	if b == nil {
		return nil, statusNotFound
	}
	return b, statusOK
}

func isTCPBuffer(t uint32) bool { return t == bufferDownstreamData || t == bufferUpstreamData }

func netGetBufferBytes(ctx context.Context, v *vm, m api.Module, s []uint64) (status, bool) {
	if !isTCPBuffer(u32(s[0])) {
		return 0, false
	}
	b, st := v.netBuffer(u32(s[0]))
	if st != statusOK {
		return st, true
	}
	data := b.Bytes()
	start, max := uint64(u32(s[1])), uint64(u32(s[2]))
	if start > uint64(len(data)) {
		return statusBadArgument, true
	}
	end := min(start+max, uint64(len(data)))
	return v.returnBytes(ctx, m, data[start:end], u32(s[3]), u32(s[4])), true
}

// netSetBufferBytes replaces size bytes at start with the value, as for
// a body: start=0 size=0 prepends, start at or past the end appends.
func netSetBufferBytes(_ context.Context, v *vm, m api.Module, s []uint64) (status, bool) {
	if !isTCPBuffer(u32(s[0])) {
		return 0, false
	}
	b, st := v.netBuffer(u32(s[0]))
	if st != statusOK {
		return st, true
	}
	val, ok := read(m, u32(s[3]), u32(s[4]))
	if !ok {
		return statusInvalidMemoryAccess, true
	}
	spliceBuffer(b, uint64(u32(s[1])), uint64(u32(s[2])), val)
	return statusOK, true
}

// spliceBuffer writes val over size bytes of b at start.
func spliceBuffer(b *filters.Buffer, start, size uint64, val []byte) {
	cur := b.Bytes()
	switch {
	case start >= uint64(len(cur)):
		b.Append(val)
	case start == 0 && size == 0:
		b.Prepend(val)
	default:
		end := min(start+size, uint64(len(cur)))
		out := make([]byte, 0, uint64(len(cur))-(end-start)+uint64(len(val)))
		out = append(append(append(out, cur[:start]...), val...), cur[end:]...)
		b.Set(out)
	}
}

func netGetBufferStatus(_ context.Context, v *vm, m api.Module, s []uint64) (status, bool) {
	if !isTCPBuffer(u32(s[0])) {
		return 0, false
	}
	b, st := v.netBuffer(u32(s[0]))
	if st != statusOK {
		return st, true
	}
	if !writeU32(m, u32(s[1]), uint32(b.Len())) || !writeU32(m, u32(s[2]), 0) {
		return statusInvalidMemoryAccess, true
	}
	return statusOK, true
}

// netContinueStream passes on the data the connection's context held
// on the downstream (2) or upstream (3) side, as Envoy's
// continueReading. The Go SDK's ContinueTcpStream sends 2.
func netContinueStream(_ context.Context, v *vm, _ api.Module, s []uint64) (status, bool) {
	t := u32(s[0])
	if t != streamDownstream && t != streamUpstream {
		return 0, false
	}
	n := netOf(v.streams[v.active])
	if n == nil {
		return statusBadArgument, true
	}
	side := filters.SideDownstream
	if t == streamUpstream {
		side = filters.SideUpstream
	}
	n.conn.Continue(side)
	return statusOK, true
}

// netCloseStream closes the connection, both ways, for either TCP stream
// type: in Envoy both close the downstream connection, and the proxy
// then closes the upstream one.
func netCloseStream(_ context.Context, v *vm, _ api.Module, s []uint64) (status, bool) {
	n := netOf(v.streams[v.active])
	if n == nil {
		return 0, false
	}
	n.conn.Close()
	return statusOK, true
}

// netGetProperty answers the properties of a TCP connection that HTTP
// streams lack, and NOT_FOUND for request and response ones.
// https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes#connection-attributes
func netGetProperty(ctx context.Context, v *vm, m api.Module, s []uint64) (status, bool) {
	n := netOf(v.streams[v.active])
	if n == nil {
		return 0, false
	}
	path, ok := readString(m, u32(s[0]), u32(s[1]))
	if !ok {
		return statusInvalidMemoryAccess, true
	}
	val, found, handled := n.property(strings.Split(path, "\x00"))
	if !handled {
		return 0, false
	}
	if !found {
		return statusNotFound, true
	}
	return v.returnBytes(ctx, m, val, u32(s[2]), u32(s[3])), true
}

func (n *netConn) property(seg []string) (val []byte, found, handled bool) {
	up, connected := n.conn.Upstream()
	switch {
	case seg[0] == "request" || seg[0] == "response":
		return nil, false, true
	case len(seg) == 2 && seg[0] == "connection" && seg[1] == "id":
		return int64Bytes(int64(n.conn.ID())), true, true
	case len(seg) == 2 && seg[0] == "upstream":
		if !connected {
			return nil, false, true
		}
		switch seg[1] {
		case "address":
			return []byte(up.RemoteAddr.String()), true, true
		case "port":
			return int64Bytes(int64(up.RemoteAddr.Port())), true, true
		case "local_address":
			return []byte(up.LocalAddr.String()), true, true
		}
		return nil, false, true
	case len(seg) == 1 && seg[0] == "cluster_name",
		len(seg) == 2 && seg[0] == "xds" && seg[1] == "cluster_name":
		return []byte(up.Cluster), connected, true
	}
	return nil, false, false
}
