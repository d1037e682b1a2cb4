// Command faults is a Proxy-Wasm plugin that misbehaves on request, for
// the host's isolation tests. The x-fault request header picks the
// fault: trap (an out-of-bounds memory access), panic (a Go panic),
// loop (an endless loop), oom (memory growth without end), badptr (a
// hostcall with a pointer outside memory). Any other request is
// answered normally, with x-served-by: wasm on the response. A plugin
// configuration of "fail" makes proxy_on_configure fail.
package main

import (
	"strconv"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct{ types.DefaultPluginContext }

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, _ := proxywasm.GetPluginConfiguration()
	if string(cfg) == "fail" {
		proxywasm.LogCritical("configuration rejected: fail was asked for")
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct{ types.DefaultHttpContext }

// hoard keeps what the oom fault allocates reachable.
var hoard [][]byte

//go:wasmimport env proxy_log
func rawLog(level, ptr, size uint32) uint32

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	fault, _ := proxywasm.GetHttpRequestHeader("x-fault")
	switch fault {
	case "trap":
		p := (*uint64)(unsafe.Pointer(uintptr(0xfffffff8)))
		*p = 1
	case "panic":
		panic("the plugin panics")
	case "loop":
		for i := 0; ; i++ {
			if i < 0 {
				break
			}
		}
	case "oom":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "badptr":
		st := rawLog(2, 0xfffffff0, 100)
		_ = proxywasm.AddHttpRequestHeader("x-badptr-status", strconv.Itoa(int(st)))
	}
	return types.ActionContinue
}

func (*stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-served-by", "wasm")
	return types.ActionContinue
}
