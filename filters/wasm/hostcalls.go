package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// hostcall is one function of the "env" module the host exports.
type hostcall struct {
	params, results []api.ValueType
	fn              api.GoModuleFunc
}

// hostcalls are the Proxy-Wasm functions the host implements, by import
// name: ABI 0.2.1 and the 0.1.0 names older SDKs still import. The
// engine links those a plugin imports; any other import returns
// UNIMPLEMENTED.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#functions-exposed-by-the-host
var hostcalls = map[string]hostcall{}

func init() {
	for name, f := range map[string]statusFunc{
		"proxy_log":                          proxyLog,
		"proxy_get_log_level":                proxyGetLogLevel,
		"proxy_get_current_time_nanoseconds": proxyGetCurrentTimeNanoseconds,
		"proxy_set_tick_period_milliseconds": proxySetTickPeriodMilliseconds,
		"proxy_get_buffer_bytes":             proxyGetBufferBytes,
		"proxy_set_buffer_bytes":             proxySetBufferBytes,
		"proxy_get_buffer_status":            proxyGetBufferStatus,
		"proxy_get_configuration":            proxyGetConfiguration,
		"proxy_get_header_map_pairs":         proxyGetHeaderMapPairs,
		"proxy_set_header_map_pairs":         proxySetHeaderMapPairs,
		"proxy_get_header_map_value":         proxyGetHeaderMapValue,
		"proxy_add_header_map_value":         proxyAddHeaderMapValue,
		"proxy_replace_header_map_value":     proxyReplaceHeaderMapValue,
		"proxy_remove_header_map_value":      proxyRemoveHeaderMapValue,
		"proxy_get_header_map_size":          proxyGetHeaderMapSize,
		"proxy_send_local_response":          proxySendLocalResponse,
		"proxy_continue_stream":              proxyContinueStream,
		"proxy_close_stream":                 proxyCloseStream,
		"proxy_continue_request":             proxyContinueRequest,
		"proxy_continue_response":            proxyContinueResponse,
		"proxy_clear_route_cache":            proxyClearRouteCache,
		"proxy_set_effective_context":        proxySetEffectiveContext,
		"proxy_done":                         proxyDone,
		"proxy_http_call":                    proxyHTTPCall,
		"proxy_get_property":                 proxyGetProperty,
		"proxy_set_property":                 proxySetProperty,
		"proxy_get_shared_data":              proxyGetSharedData,
		"proxy_set_shared_data":              proxySetSharedData,
		"proxy_register_shared_queue":        proxyRegisterSharedQueue,
		"proxy_resolve_shared_queue":         proxyResolveSharedQueue,
		"proxy_enqueue_shared_queue":         proxyEnqueueSharedQueue,
		"proxy_dequeue_shared_queue":         proxyDequeueSharedQueue,
		"proxy_define_metric":                proxyDefineMetric,
		"proxy_get_metric":                   proxyGetMetric,
	} {
		register(name, f, nil)
	}
	// The metric value arguments are 64-bit.
	register("proxy_increment_metric", proxyIncrementMetric, []api.ValueType{i32, i64})
	register("proxy_record_metric", proxyRecordMetric, []api.ValueType{i32, i64})
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// statusFunc is a hostcall body: it reads its arguments from stack and
// returns the status the guest sees.
type statusFunc struct {
	params int
	fn     func(ctx context.Context, v *vm, m api.Module, stack []uint64) status
}

func sf(params int, fn func(ctx context.Context, v *vm, m api.Module, stack []uint64) status) statusFunc {
	return statusFunc{params, fn}
}

func register(name string, f statusFunc, params []api.ValueType) {
	if params == nil {
		params = make([]api.ValueType, f.params)
		for i := range params {
			params[i] = i32
		}
	}
	hostcalls[name] = hostcall{
		params:  params,
		results: []api.ValueType{i32},
		fn: func(ctx context.Context, m api.Module, stack []uint64) {
			stack[0] = uint64(f.fn(ctx, vmOf(ctx), m, stack))
		},
	}
}

func u32(v uint64) uint32 { return uint32(v) }

// callouts are the hostcalls that start a call whose answer may decide
// for the stream that made it (see filter.calledOut).
var callouts = map[string]bool{"proxy_http_call": true, "proxy_grpc_call": true, "proxy_grpc_stream": true}

// trackCallout marks the running stream as waiting on a call it made.
func trackCallout(fn api.GoModuleFunc) api.GoModuleFunc {
	return func(ctx context.Context, m api.Module, stack []uint64) {
		fn(ctx, m, stack)
		v := vmOf(ctx)
		if s := v.streams[v.active]; s != nil && uint32(stack[0]) == statusOK {
			s.calledOut = true
		}
	}
}
