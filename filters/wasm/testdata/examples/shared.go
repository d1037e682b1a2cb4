package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const sharedKey = "shared_data_key"

// sharedCounter behaves as the SDK's shared_data example: every request
// increments a counter in shared data with compare-and-swap; the value
// is returned in x-shared-value.
type sharedCounter struct {
	types.DefaultHttpContext
	value uint64
}

func (c *sharedCounter) OnHttpRequestHeaders(int, bool) types.Action {
	for {
		v, err := increment()
		if errors.Is(err, types.ErrorStatusCasMismatch) {
			continue
		}
		if err != nil {
			proxywasm.LogWarnf("incrementing shared data: %v", err)
		}
		c.value = v
		return types.ActionContinue
	}
}

func (c *sharedCounter) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-shared-value", strconv.FormatUint(c.value, 10))
	return types.ActionContinue
}

func increment() (uint64, error) {
	data, cas, err := proxywasm.GetSharedData(sharedKey)
	if err != nil {
		return 0, err
	}
	next := uint64(1)
	if len(data) == 8 {
		next = binary.LittleEndian.Uint64(data) + 1
	}
	return next, proxywasm.SetSharedData(sharedKey, binary.LittleEndian.AppendUint64(nil, next), cas)
}

// queueSender behaves as the SDK's shared_queue sender: it enqueues the
// request's x-queue header on the receiver's queue.
type queueSender struct {
	types.DefaultHttpContext
	queueID uint32
}

func (c *queueSender) OnHttpRequestHeaders(int, bool) types.Action {
	v, err := proxywasm.GetHttpRequestHeader("x-queue")
	if err != nil {
		return types.ActionContinue
	}
	if err := proxywasm.EnqueueSharedQueue(c.queueID, []byte(v)); err != nil {
		proxywasm.LogCriticalf("enqueue: %v", err)
	}
	return types.ActionContinue
}

// OnQueueReady drains the queue, counting items, as the receiver does.
func (p *plugin) OnQueueReady(id uint32) {
	for {
		b, err := proxywasm.DequeueSharedQueue(id)
		if err != nil {
			if err != types.ErrorStatusEmpty {
				proxywasm.LogCriticalf("dequeue: %v", err)
			}
			return
		}
		proxywasm.LogInfof("dequeued %q", b)
		p.items.Increment(1)
	}
}

// metrics behaves as the SDK's metrics example: a counter per value of
// the my-custom-header request header, plus a gauge and a histogram.
type metrics struct{ types.DefaultHttpContext }

var counters = map[string]proxywasm.MetricCounter{}

func (*metrics) OnHttpRequestHeaders(int, bool) types.Action {
	v, err := proxywasm.GetHttpRequestHeader("my-custom-header")
	if err != nil {
		return types.ActionContinue
	}
	c, ok := counters[v]
	if !ok {
		c = proxywasm.DefineCounterMetric(fmt.Sprintf("custom_header_value_counts_value=%s_reporter=wasmgosdk", v))
		counters[v] = c
	}
	c.Increment(1)
	g := proxywasm.DefineGaugeMetric("last_header_length")
	g.Add(int64(len(v)) - g.Value())
	proxywasm.DefineHistogramMetric("header_length").Record(uint64(len(v)))
	_ = proxywasm.AddHttpRequestHeader("x-count", strconv.FormatUint(c.Value(), 10))
	return types.ActionContinue
}

// properties reads Envoy attributes and reports them in request headers
// the upstream echoes, and sets and reads back a property of its own.
type properties struct{ types.DefaultHttpContext }

func (*properties) OnHttpRequestHeaders(int, bool) types.Action {
	for _, p := range [][]string{
		{"request", "path"}, {"request", "url_path"}, {"request", "host"}, {"request", "method"},
		{"request", "scheme"}, {"request", "id"}, {"request", "protocol"},
		{"source", "address"}, {"destination", "address"},
		{"plugin_name"}, {"plugin_root_id"}, {"plugin_vm_id"}, {"node", "id"},
		{"cluster_name"}, {"route_name"}, {"request", "headers", "x-probe"},
		{"xds", "route_metadata", "filter_metadata", "istio", "config"},
	} {
		v, err := proxywasm.GetProperty(p)
		if err != nil {
			v = []byte("error: " + err.Error())
		}
		_ = proxywasm.AddHttpRequestHeader("x-prop-"+join(p), string(v))
	}
	for _, p := range [][]string{{"source", "port"}, {"request", "time"}, {"xds", "listener_direction"}} {
		v, err := proxywasm.GetProperty(p)
		n := "error"
		if err == nil && len(v) == 8 {
			n = strconv.FormatInt(int64(binary.LittleEndian.Uint64(v)), 10)
		}
		_ = proxywasm.AddHttpRequestHeader("x-prop-"+join(p), n)
	}
	if _, err := proxywasm.GetProperty([]string{"no", "such"}); err == types.ErrorStatusNotFound {
		_ = proxywasm.AddHttpRequestHeader("x-prop-missing", "not found")
	}
	_ = proxywasm.SetProperty([]string{"wasm", "mine"}, []byte("kept"))
	if v, err := proxywasm.GetProperty([]string{"wasm", "mine"}); err == nil {
		_ = proxywasm.AddHttpRequestHeader("x-prop-set", string(v))
	}
	hs, err := proxywasm.GetPropertyMap([]string{"request", "headers"})
	if err == nil {
		_ = proxywasm.AddHttpRequestHeader("x-prop-header-count", strconv.Itoa(len(hs)))
	}
	return types.ActionContinue
}

func join(p []string) string {
	s := p[0]
	for _, x := range p[1:] {
		s += "." + x
	}
	return s
}
