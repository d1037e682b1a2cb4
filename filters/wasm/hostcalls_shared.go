package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// Shared data, shared queues and metrics: kept by the host for the
// plugin's vm_id, so every instance of the pool sees the same.

var proxyGetSharedData = sf(5, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	key, ok := readString(m, u32(s[0]), u32(s[1]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	val, cas, found := v.pool.shared.get(key)
	if !found {
		return statusNotFound
	}
	if st := v.returnBytes(ctx, m, val, u32(s[2]), u32(s[3])); st != statusOK {
		return st
	}
	if !writeU32(m, u32(s[4]), cas) {
		return statusInvalidMemoryAccess
	}
	return statusOK
})

var proxySetSharedData = sf(5, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	key, ok := readString(m, u32(s[0]), u32(s[1]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	val, ok := read(m, u32(s[2]), u32(s[3]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	return v.pool.shared.set(key, val, u32(s[4]))
})

var proxyRegisterSharedQueue = sf(3, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	name, ok := readString(m, u32(s[0]), u32(s[1]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	id := v.pool.shared.register(name, v, v.rootOfActive())
	if !writeU32(m, u32(s[2]), id) {
		return statusInvalidMemoryAccess
	}
	return statusOK
})

var proxyResolveSharedQueue = sf(5, func(_ context.Context, _ *vm, m api.Module, s []uint64) status {
	vmID, ok1 := readString(m, u32(s[0]), u32(s[1]))
	name, ok2 := readString(m, u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	id, found := sharedFor(vmID).resolve(name)
	if !found {
		return statusNotFound
	}
	if !writeU32(m, u32(s[4]), id) {
		return statusInvalidMemoryAccess
	}
	return statusOK
})

var proxyEnqueueSharedQueue = sf(3, func(_ context.Context, _ *vm, m api.Module, s []uint64) status {
	q := queueByID(u32(s[0]))
	if q == nil {
		return statusNotFound
	}
	b, ok := read(m, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	q.enqueue(b)
	return statusOK
})

var proxyDequeueSharedQueue = sf(3, func(ctx context.Context, v *vm, m api.Module, s []uint64) status {
	q := queueByID(u32(s[0]))
	if q == nil {
		return statusNotFound
	}
	b, ok := q.dequeue()
	if !ok {
		return statusEmpty
	}
	return v.returnBytes(ctx, m, b, u32(s[1]), u32(s[2]))
})

var proxyDefineMetric = sf(4, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	name, ok := readString(m, u32(s[1]), u32(s[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	id, st := v.pool.shared.define(u32(s[0]), name, v.pool.env.Stats)
	if st != statusOK {
		return st
	}
	if !writeU32(m, u32(s[3]), id) {
		return statusInvalidMemoryAccess
	}
	return statusOK
})

var proxyIncrementMetric = sf(2, func(_ context.Context, v *vm, _ api.Module, s []uint64) status {
	mt := v.pool.shared.metric(u32(s[0]))
	if mt == nil {
		return statusNotFound
	}
	return mt.increment(int64(s[1]))
})

var proxyRecordMetric = sf(2, func(_ context.Context, v *vm, _ api.Module, s []uint64) status {
	mt := v.pool.shared.metric(u32(s[0]))
	if mt == nil {
		return statusNotFound
	}
	return mt.record(s[1])
})

// proxyGetMetric reads a counter's or gauge's value; for a histogram,
// the number of values recorded.
var proxyGetMetric = sf(2, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	mt := v.pool.shared.metric(u32(s[0]))
	if mt == nil {
		return statusNotFound
	}
	if !writeU64(m, u32(s[1]), uint64(mt.value.Load())) {
		return statusInvalidMemoryAccess
	}
	return statusOK
})
