package wasm

import (
	"context"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// memorylessModule is a Proxy-Wasm marker and allocator without a
// linear memory, written out by hand: types () -> () and (i32) -> i32,
// two functions, their exports, and their bodies.
func memorylessModule() []byte {
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	section := func(id byte, content ...byte) []byte { return append([]byte{id, byte(len(content))}, content...) }
	exports := []byte{2}
	exports = append(append(exports, name("proxy_abi_version_0_2_1")...), 0, 0)
	exports = append(append(exports, name("proxy_on_memory_allocate")...), 0, 1)
	m := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	m = append(m, section(1, 2, 0x60, 0, 0, 0x60, 1, 0x7f, 1, 0x7f)...)
	m = append(m, section(3, 2, 0, 1)...)
	m = append(m, section(7, exports...)...)
	m = append(m, section(10, 2, 2, 0, 0x0b, 4, 0, 0x41, 0, 0x0b)...)
	return m
}

// TestMemorylessModuleRefused refuses a module that exports no linear
// memory: no hostcall could reach its data, so it is no plugin.
func TestMemorylessModuleRefused(t *testing.T) {
	pb := pluginConf(t, "faults", "")
	pb.GetConfig().GetVmConfig().Code = &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
		Specifier: &corev3.DataSource_InlineBytes{InlineBytes: memorylessModule()},
	}}}
	_, err := New(context.Background(), pb, envForTest(t), Options{})
	if err == nil || !strings.Contains(err.Error(), "exports no memory") || !strings.Contains(err.Error(), "config.vm_config.code") {
		t.Fatalf("err = %v, want the module refused for its missing memory", err)
	}
}
