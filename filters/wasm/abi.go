package wasm

// Values of the Proxy-Wasm ABI types, as numbered in
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#types.

// status is proxy_status_t, the result of every hostcall.
type status = uint32

const (
	statusOK                  status = 0
	statusNotFound            status = 1
	statusBadArgument         status = 2
	statusSerializationFailed status = 3
	statusParseFailure        status = 4
	statusInvalidMemoryAccess status = 6
	statusEmpty               status = 7
	statusCASMismatch         status = 8
	statusInternalFailure     status = 10
	statusUnimplemented       status = 12
)

// action is proxy_action_t, a stream callback's answer. Envoy also
// accepts StopAllIterationAndBuffer (3) and friends; every value but
// CONTINUE pauses.
const (
	actionContinue uint32 = 0
	actionPause    uint32 = 1
)

// bufferType is proxy_buffer_type_t.
const (
	bufferRequestBody      uint32 = 0
	bufferResponseBody     uint32 = 1
	bufferHTTPCallResponse uint32 = 4
	bufferGRPCMessage      uint32 = 5
	bufferVMConfiguration  uint32 = 6
	bufferPluginConfig     uint32 = 7
)

// mapType is proxy_map_type_t.
const (
	mapRequestHeaders       uint32 = 0
	mapRequestTrailers      uint32 = 1
	mapResponseHeaders      uint32 = 2
	mapResponseTrailers     uint32 = 3
	mapHTTPCallHeaders      uint32 = 6
	mapHTTPCallTrailers     uint32 = 7
	mapTypeCount            uint32 = 8
	mapGRPCInitialMetadata  uint32 = 4
	mapGRPCTrailingMetadata uint32 = 5
)

// streamType is proxy_stream_type_t.
const (
	streamRequest  uint32 = 0
	streamResponse uint32 = 1
)

// metricType is proxy_metric_type_t.
const (
	metricCounter   uint32 = 0
	metricGauge     uint32 = 1
	metricHistogram uint32 = 2
)

// Log levels, proxy_log_level_t.
const (
	logTrace    uint32 = 0
	logDebug    uint32 = 1
	logInfo     uint32 = 2
	logWarn     uint32 = 3
	logError    uint32 = 4
	logCritical uint32 = 5
)
