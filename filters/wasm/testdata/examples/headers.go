package main

import (
	"os"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// headers behaves as the SDK's http_headers example: it sets test: best
// on the request and adds a fixed and a configured response header.
type headers struct {
	types.DefaultHttpContext
	id          uint32
	name, value string
}

func (h *headers) OnHttpRequestHeaders(int, bool) types.Action {
	if err := proxywasm.ReplaceHttpRequestHeader("test", "best"); err != nil {
		proxywasm.LogCritical("failed to set request header: test")
	}
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get request headers: %v", err)
	}
	for _, kv := range hs {
		proxywasm.LogDebugf("request header --> %s: %s", kv[0], kv[1])
	}
	return types.ActionContinue
}

func (h *headers) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("x-proxy-wasm-go-sdk-example", "http_headers"); err != nil {
		proxywasm.LogCriticalf("failed to add response header: %v", err)
	}
	if err := proxywasm.AddHttpResponseHeader(h.name, h.value); err != nil {
		proxywasm.LogCriticalf("failed to add response header: %v", err)
	}
	// The request headers are still readable in the response phase.
	if v, err := proxywasm.GetHttpRequestHeader("test"); err == nil {
		_ = proxywasm.AddHttpResponseHeader("x-request-test", v)
	}
	return types.ActionContinue
}

func (h *headers) OnHttpStreamDone() { proxywasm.LogDebugf("%d finished", h.id) }

// addHeader is the benchmark's header-adding plugin.
type addHeader struct{ types.DefaultHttpContext }

func (*addHeader) OnHttpRequestHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpRequestHeader("x-wasm", "1")
	return types.ActionContinue
}

// foreign calls a function the host does not implement.
type foreign struct{ types.DefaultHttpContext }

func (*foreign) OnHttpRequestHeaders(int, bool) types.Action {
	_, err := proxywasm.CallForeignFunction("compress", []byte("x"))
	msg := "ok"
	if err != nil {
		msg = err.Error()
	}
	_ = proxywasm.SendHttpResponse(200, [][2]string{{"x-foreign", msg}}, nil, -1)
	return types.ActionPause
}

// environ reports the environment variable WASM_TEST and the VM
// configuration in request headers.
type environ struct{ types.DefaultHttpContext }

func (*environ) OnHttpRequestHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpRequestHeader("x-env", os.Getenv("WASM_TEST"))
	_ = proxywasm.AddHttpRequestHeader("x-host-env", os.Getenv("WASM_HOST_TEST"))
	_ = proxywasm.AddHttpRequestHeader("x-vm-config", string(vmConfig))
	return types.ActionContinue
}
