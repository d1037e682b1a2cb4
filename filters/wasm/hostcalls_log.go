package wasm

import (
	"context"
	"log/slog"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Logging, clock and timer hostcalls.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#logging

var slogLevels = [...]slog.Level{
	logTrace:    slog.LevelDebug - 4,
	logDebug:    slog.LevelDebug,
	logInfo:     slog.LevelInfo,
	logWarn:     slog.LevelWarn,
	logError:    slog.LevelError,
	logCritical: slog.LevelError + 4,
}

var proxyLog = sf(3, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	level := u32(s[0])
	if level > logCritical {
		return statusBadArgument
	}
	msg, ok := read(m, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	if level >= logError {
		// Kept to explain a failed start in the NACK.
		v.lastError = string(msg)
	}
	if v.log.Enabled(ctx, slogLevels[level]) {
		v.log.Log(ctx, slogLevels[level], string(msg))
	}
	return statusOK
})

// proxyGetLogLevel reports the most verbose level the gateway's logger
// would print, so plugins can skip formatting messages nobody reads.
var proxyGetLogLevel = sf(1, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	level := logCritical
	for l := logTrace; l <= logCritical; l++ {
		if v.log.Enabled(ctx, slogLevels[l]) {
			level = l
			break
		}
	}
	if !writeU32(m, u32(s[0]), level) {
		return statusInvalidMemoryAccess
	}
	return statusOK
})

var proxyGetCurrentTimeNanoseconds = sf(1, func(_ context.Context, _ *vm, m api.Module, s []uint64) status {
	if !writeU64(m, u32(s[0]), uint64(time.Now().UnixNano())) {
		return statusInvalidMemoryAccess
	}
	return statusOK
})

// proxySetTickPeriodMilliseconds arms proxy_on_tick on the root context
// of this instance.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_set_tick_period_milliseconds
var proxySetTickPeriodMilliseconds = sf(1, func(_ context.Context, v *vm, _ api.Module, s []uint64) status {
	v.setTick(time.Duration(u32(s[0])) * time.Millisecond)
	return statusOK
})
