package wasm

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	netwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	"github.com/tetratelabs/wazero/api"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// NetworkTypeURL is the config type of the network (TCP) Wasm filter,
// what Istio's WasmPlugin of type NETWORK becomes.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/listeners/network_filters/wasm_filter
const NetworkTypeURL = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"

func init() {
	filters.RegisterNetwork(NetworkTypeURL, buildNetwork)
}

func buildNetwork(cfg proto.Message, env filters.Env) (filters.NetworkFactory, error) {
	pb, ok := cfg.(*netwasmv3.Wasm)
	if !ok {
		return nil, fmt.Errorf("wasm: config is %T, want the network Wasm filter", cfg)
	}
	ctx := context.Background()
	code, err := loadPluginCode(ctx, pb.GetConfig(), env.Upstream, DefaultOptions())
	if err != nil {
		return nil, err
	}
	return newNetwork(ctx, pb, code, env, DefaultOptions())
}

// newNetwork builds a network filter over the same pool of instances an
// HTTP filter of the same plugin config uses: the PluginConfig is the
// same message in both filters, and Envoy too keeps one VM per vm_id
// and code whichever filters run it.
func newNetwork(ctx context.Context, pb *netwasmv3.Wasm, code []byte, env filters.Env, o Options) (*NetworkFactory, error) {
	f, err := newFromCode(ctx, &wasmfilterv3.Wasm{Config: pb.GetConfig()}, code, env, o)
	if err != nil {
		return nil, err
	}
	return &NetworkFactory{f: f}, nil
}

// NetworkFactory is a compiled network Wasm filter. Each connection
// gets a context in one instance of the plugin's pool, for its life.
type NetworkFactory struct {
	f *Factory
}

var _ io.Closer = (*NetworkFactory)(nil)

// Close lets go of the instances once no connection uses them, as
// Factory.Close does.
func (nf *NetworkFactory) Close() error { return nf.f.Close() }

// NewNetworkFilter pins the connection to one instance of the pool.
func (nf *NetworkFactory) NewNetworkFilter(c filters.NetworkConn) filters.NetworkFilter {
	f := nf.f
	f.begin()
	v, _ := f.pool.pick()
	// Hostcalls shared with HTTP streams (properties, logs, metadata)
	// read the connection through an exchange that has no request.
	x := &filters.Exchange{Context: c.Context(), Downstream: c.Info(), Log: c.Log(), Info: filters.StreamInfo{Start: time.Now()}}
	n := &netConn{conn: c, s: &filter{f: f, vm: v, x: x}}
	netConns.Store(n.s, n)
	return n
}

// netConns finds the connection of a context, for the hostcalls that
// act on TCP data.
var netConns sync.Map // *filter -> *netConn

// netOf is the connection whose context s is, or nil for an HTTP stream.
func netOf(s *filter) *netConn {
	if s == nil {
		return nil
	}
	if n, ok := netConns.Load(s); ok {
		return n.(*netConn)
	}
	return nil
}

// netConn is one connection's context in the instance it is pinned to.
// s holds the context's id and instance, as for an HTTP stream; data
// and fn are guarded by the instance's mutex.
type netConn struct {
	conn filters.NetworkConn
	s    *filter

	// data is the buffer of the running data callback, by side: the
	// plugin reads and replaces it as DownstreamData or UpstreamData.
	data [2]*filters.Buffer
	fn   netExports
	// failed is set once the fail strategy applied: the connection
	// goes on without the plugin (fail open) or was closed.
	failed atomic.Bool
}

// netExports are a plugin's TCP callbacks, looked up in the instance
// a connection is pinned to.
type netExports struct {
	vm                      *vm
	onNewConnection         api.Function
	onDownstreamData        api.Function
	onUpstreamData          api.Function
	onDownstreamClose       api.Function
	onUpstreamClose         api.Function
	onDone, onLog, onDelete api.Function
}

func bindNetwork(v *vm) netExports {
	get := func(name string) api.Function { return v.mod.ExportedFunction(name) }
	return netExports{
		vm:                v,
		onNewConnection:   get("proxy_on_new_connection"),
		onDownstreamData:  get("proxy_on_downstream_data"),
		onUpstreamData:    get("proxy_on_upstream_data"),
		onDownstreamClose: get("proxy_on_downstream_connection_close"),
		onUpstreamClose:   get("proxy_on_upstream_connection_close"),
		onDone:            v.fn.onDone,
		onLog:             v.fn.onLog,
		onDelete:          v.fn.onDelete,
	}
}

// peer_type values of the connection close callbacks.
const (
	peerLocal  = 1
	peerRemote = 2
)

// call runs one callback of the connection's context, creating the
// context on the first. before runs with the instance locked, to hand
// the callback its data. ok is false when the plugin failed: its
// instance crashed in this callback, or earlier, taking the context
// with it.
func (n *netConn) call(pick func(*netExports) api.Function, a1, a2 uint64, before func()) (action uint32, ok bool) {
	s := n.s
	v := s.lock()
	if v == nil {
		return 0, false
	}
	defer v.mu.Unlock()
	if s.enter(s.x) != entered {
		return 0, false
	}
	defer func() { v.calling = nil }()
	if n.fn.vm != v {
		n.fn = bindNetwork(v)
	}
	fn := pick(&n.fn)
	if fn == nil {
		return actionContinue, true
	}
	if before != nil {
		before()
	}
	v.stack[0], v.stack[1], v.stack[2] = uint64(s.id), a1, a2
	action, err := v.invoke(fn)
	n.data = [2]*filters.Buffer{}
	return action, err == nil
}

// failure applies the fail strategy: fail open goes on without the
// plugin, otherwise the connection closes.
func (n *netConn) failure() filters.Status {
	n.failed.Store(true)
	if n.s.f.cfg.failOpen {
		return filters.Continue
	}
	n.conn.Log().Warn("wasm plugin failed; closing the connection", "plugin", n.s.f.cfg.name)
	return filters.Stop
}

// OnNewConnection runs proxy_on_new_connection. A Pause there holds
// the connection's start (the next filters, and the upstream connect)
// until the plugin calls proxy_continue_stream for the downstream side,
// from an http call's answer or a tick, as Envoy waits for
// continueReading.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_on_new_connection
func (n *netConn) OnNewConnection() filters.Status {
	action, ok := n.call(func(e *netExports) api.Function { return e.onNewConnection }, 0, 0, nil)
	if !ok {
		return n.failure()
	}
	if action != actionContinue {
		return filters.StopAndBuffer
	}
	return filters.Continue
}

// OnData runs proxy_on_downstream_data or proxy_on_upstream_data with
// the data read and held so far. Pause holds it and calls again with
// more (or passes it on at proxy_continue_stream).
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_on_downstream_data
func (n *netConn) OnData(side filters.Side, data *filters.Buffer, end bool) filters.Status {
	if n.failed.Load() {
		return filters.Continue
	}
	pick := func(e *netExports) api.Function { return e.onDownstreamData }
	if side == filters.SideUpstream {
		pick = func(e *netExports) api.Function { return e.onUpstreamData }
	}
	action, ok := n.call(pick, uint64(data.Len()), b2u(end), func() { n.data[side] = data })
	if !ok {
		return n.failure()
	}
	if action != actionContinue {
		return filters.StopAndBuffer
	}
	return filters.Continue
}

// OnClose runs proxy_on_downstream_connection_close or
// proxy_on_upstream_connection_close.
func (n *netConn) OnClose(side filters.Side, byPeer bool) {
	if n.failed.Load() {
		return
	}
	peer := uint64(peerLocal)
	if byPeer {
		peer = peerRemote
	}
	pick := func(e *netExports) api.Function { return e.onDownstreamClose }
	if side == filters.SideUpstream {
		pick = func(e *netExports) api.Function { return e.onUpstreamClose }
	}
	n.call(pick, peer, 0, nil)
}

// OnDone ends the context: proxy_on_done, proxy_on_log (where the Go
// SDK runs OnStreamDone), then proxy_on_delete.
func (n *netConn) OnDone() {
	s := n.s
	defer s.f.done()
	defer netConns.Delete(s)
	v := s.vm
	if v == nil || s.id == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	defer delete(v.streams, s.id)
	if n.failed.Load() || s.vmFailed || s.orphaned || v.dead.Load() {
		return
	}
	if n.fn.vm != v {
		n.fn = bindNetwork(v)
	}
	for _, f := range []api.Function{n.fn.onDone, n.fn.onLog, n.fn.onDelete} {
		v.active, v.calling = s.id, s
		v.stack[0] = uint64(s.id)
		if _, err := v.invoke(f); err != nil {
			break
		}
	}
	v.calling = nil
}
