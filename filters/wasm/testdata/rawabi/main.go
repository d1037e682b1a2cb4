package main

import (
	"strconv"
	"strings"
	"unsafe"
)

// root is one plugin's root context: several plugins may share the VM,
// each with its own root_id and configuration.
type root struct {
	id    uint32
	name  string // plugin_root_id
	conf  map[string]string
	ticks int
}

// call is an outstanding gRPC call or stream made for a paused stream.
type call struct {
	stream            uint32
	unary             bool
	initial, trailing string
	msgs              []string
}

var (
	roots   = map[uint32]*root{}
	streams = map[uint32]*root{}
	calls   = map[uint32]*call{}

	// requests counts the requests of every plugin of the VM: plugins
	// sharing a VM share it.
	requests int
	// callbacks counts the gRPC callbacks received.
	callbacks int
	// pending is the call grpc-cancel mode cancels.
	pending uint32
)

func enter() { clear(kept); kept = kept[:0] }

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(id, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(id, parent uint32) {
	enter()
	if parent == 0 {
		roots[id] = &root{id: id, name: property("plugin_root_id")}
		return
	}
	streams[id] = roots[parent]
}

// proxyOnConfigure reads the configuration: space-separated key=value
// pairs, mode= choosing what the plugin does.
//
//go:wasmexport proxy_on_configure
func proxyOnConfigure(id, size uint32) uint32 {
	enter()
	r := roots[id]
	r.conf = map[string]string{}
	for _, f := range strings.Fields(string(bufferBytes(bufferPluginConfig, size))) {
		k, v, _ := strings.Cut(f, "=")
		r.conf[k] = v
	}
	if r.conf["fail"] == "configure" {
		logError("configuration refused")
		return 0
	}
	if ms, err := strconv.Atoi(r.conf["tick"]); err == nil {
		proxySetTickPeriodMilliseconds(uint32(ms))
	}
	return 1
}

//go:wasmexport proxy_on_tick
func proxyOnTick(id uint32) {
	enter()
	roots[id].ticks++
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(id, n, end uint32) uint32 {
	enter()
	r := streams[id]
	switch r.conf["mode"] {
	case "count":
		requests++
		addHeader(mapRequestHeaders, "x-"+r.name+"-config", r.conf["value"])
		addHeader(mapRequestHeaders, "x-vm-requests", strconv.Itoa(requests))
		addHeader(mapRequestHeaders, "x-"+r.name+"-ticks", strconv.Itoa(r.ticks))
		return 0
	case "grpc-unary":
		msg, _ := headerValue(mapRequestHeaders, "x-msg")
		var cid uint32
		if st := grpcCall(r, "Unary", msg, &cid); st != 0 {
			respond(500, "grpc_call status "+strconv.Itoa(int(st)))
			return 1
		}
		calls[cid] = &call{stream: id, unary: true}
		return 1
	case "grpc-stream":
		up, svc, method, md := target(r, "Stream")
		var cid uint32
		if st := proxyGRPCStream(sptr(up), uint32(len(up)), sptr(svc), uint32(len(svc)), sptr(method), uint32(len(method)),
			ptr(md), uint32(len(md)), unsafe.Pointer(&cid)); st != 0 {
			respond(500, "grpc_stream status "+strconv.Itoa(int(st)))
			return 1
		}
		calls[cid] = &call{stream: id}
		for _, m := range []string{"a", "b"} {
			proxyGRPCSend(cid, sptr(m), uint32(len(m)), 0)
		}
		// Half-closes: the answers still arrive.
		proxyGRPCClose(cid)
		return 1
	case "grpc-cancel":
		// One request starts a call that hangs, the next cancels it.
		if pending == 0 {
			st := grpcCall(r, "Hang", "x", &pending)
			addHeader(mapRequestHeaders, "x-call", strconv.Itoa(int(st)))
		} else {
			addHeader(mapRequestHeaders, "x-cancel", strconv.Itoa(int(proxyGRPCCancel(pending))))
			addHeader(mapRequestHeaders, "x-cancel-again", strconv.Itoa(int(proxyGRPCCancel(pending))))
			pending = 0
		}
		addHeader(mapRequestHeaders, "x-grpc-callbacks", strconv.Itoa(callbacks))
		return 0
	}
	return 0
}

// target is the upstream, service, method and initial metadata of a
// call, from the configuration.
func target(r *root, method string) (string, string, string, []byte) {
	up := r.conf["upstream"]
	if r.conf["upstream_hex"] != "" {
		up = unhex(r.conf["upstream_hex"])
	}
	if m := r.conf["method"]; m != "" {
		method = m
	}
	return up, "test.Echo", method, encodeMap("x-md", "from-plugin")
}

func grpcCall(r *root, method, msg string, cid *uint32) uint32 {
	up, svc, m, md := target(r, method)
	timeout, _ := strconv.Atoi(r.conf["timeout"])
	return proxyGRPCCall(sptr(up), uint32(len(up)), sptr(svc), uint32(len(svc)), sptr(m), uint32(len(m)),
		ptr(md), uint32(len(md)), sptr(msg), uint32(len(msg)), uint32(timeout), unsafe.Pointer(cid))
}

func unhex(s string) string {
	b := make([]byte, len(s)/2)
	for i := range b {
		v, _ := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		b[i] = byte(v)
	}
	return string(b)
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(id, n, end uint32) uint32 { return 0 }

//go:wasmexport proxy_on_grpc_receive_initial_metadata
func proxyOnGRPCReceiveInitialMetadata(rootID, id, n uint32) {
	enter()
	callbacks++
	if c := calls[id]; c != nil {
		c.initial, _ = headerValue(mapGRPCInitialMetadata, "x-initial")
	}
}

//go:wasmexport proxy_on_grpc_receive
func proxyOnGRPCReceive(rootID, id, size uint32) {
	enter()
	callbacks++
	c := calls[id]
	if c == nil {
		return
	}
	c.msgs = append(c.msgs, string(bufferBytes(bufferGRPCMessage, size)))
	if c.unary {
		// A call that succeeds ends with its message, as in Envoy.
		delete(calls, id)
		proxySetEffectiveContext(c.stream)
		respond(200, "receive "+c.msgs[0]+" root="+roots[rootID].name)
	}
}

//go:wasmexport proxy_on_grpc_receive_trailing_metadata
func proxyOnGRPCReceiveTrailingMetadata(rootID, id, n uint32) {
	enter()
	callbacks++
	if c := calls[id]; c != nil {
		c.trailing, _ = headerValue(mapGRPCTrailingMetadata, "x-trailing")
	}
}

//go:wasmexport proxy_on_grpc_close
func proxyOnGRPCClose(rootID, id, code uint32) {
	enter()
	callbacks++
	c := calls[id]
	if c == nil {
		return
	}
	delete(calls, id)
	var sc uint32
	var p unsafe.Pointer
	var n uint32
	proxyGetStatus(unsafe.Pointer(&sc), unsafe.Pointer(&p), unsafe.Pointer(&n))
	proxySetEffectiveContext(c.stream)
	respond(200, "close code="+strconv.Itoa(int(code))+" status="+strconv.Itoa(int(sc))+
		" message="+string(returned(p, n))+" initial="+c.initial+" msgs="+strings.Join(c.msgs, ",")+
		" trailing="+c.trailing+" root="+roots[rootID].name)
}

//go:wasmexport proxy_on_done
func proxyOnDone(id uint32) uint32 { return 1 }

//go:wasmexport proxy_on_log
func proxyOnLog(id uint32) {}

//go:wasmexport proxy_on_delete
func proxyOnDelete(id uint32) { delete(streams, id) }
