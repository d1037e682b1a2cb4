// Command examples is a Proxy-Wasm plugin for the host's tests: one
// binary whose plugin configuration, a JSON object with a "mode", picks
// the behavior of one of the Go SDK's examples (http_headers, http_body,
// http_routing, http_auth_random, dispatch_call_on_tick, shared_data,
// shared_queue, metrics, properties, json_validation, postpone_requests,
// helloworld), plus benchmark plugins (noop, addheader, readbody).
package main

import (
	"encoding/json"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

// vmConfig is the VM configuration read in OnVMStart.
var vmConfig []byte

func (*vmContext) OnVMStart(int) types.OnVMStartStatus {
	vmConfig, _ = proxywasm.GetVMConfiguration()
	return types.OnVMStartStatusOK
}

// config is the plugin configuration.
type config struct {
	Mode         string   `json:"mode"`
	Header       string   `json:"header"`
	Value        string   `json:"value"`
	Cluster      string   `json:"cluster"`
	Dice         uint32   `json:"dice"`
	TickMillis   uint32   `json:"tick_ms"`
	RequiredKeys []string `json:"requiredKeys"`
	QueueVM      string   `json:"queue_vm"`
}

func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	return &plugin{id: id}
}

// plugin is the root context: it reads the configuration and makes the
// stream contexts of its mode.
type plugin struct {
	types.DefaultPluginContext
	id  uint32
	cfg config

	postponed []uint32 // postpone mode
	queueID   uint32   // queue modes
	ticks     proxywasm.MetricCounter
	calls     proxywasm.MetricCounter
	items     proxywasm.MetricCounter
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("reading plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	if err := json.Unmarshal(data, &p.cfg); err != nil {
		proxywasm.LogCriticalf("invalid configuration %q: %v", data, err)
		return types.OnPluginStartStatusFailed
	}
	switch p.cfg.Mode {
	case "headers":
		if p.cfg.Header == "" || p.cfg.Value == "" {
			proxywasm.LogCritical(`invalid configuration; expected {"header": "<header name>", "value": "<header value>"}`)
			return types.OnPluginStartStatusFailed
		}
	case "tick", "hello", "postpone":
		if p.cfg.TickMillis == 0 {
			p.cfg.TickMillis = 10
		}
		if err := proxywasm.SetTickPeriodMilliSeconds(p.cfg.TickMillis); err != nil {
			proxywasm.LogCriticalf("setting tick period: %v", err)
			return types.OnPluginStartStatusFailed
		}
		p.ticks = proxywasm.DefineCounterMetric("ticks_" + p.cfg.Mode)
		p.calls = proxywasm.DefineCounterMetric("tick_call_responses")
	case "queue-receiver":
		id, err := proxywasm.RegisterSharedQueue("http_headers")
		if err != nil {
			proxywasm.LogCriticalf("registering queue: %v", err)
			return types.OnPluginStartStatusFailed
		}
		p.queueID = id
		p.items = proxywasm.DefineCounterMetric("queue_items_received")
	case "queue-sender":
		id, err := proxywasm.ResolveSharedQueue(p.cfg.QueueVM, "http_headers")
		if err != nil {
			proxywasm.LogCriticalf("resolving queue: %v", err)
			return types.OnPluginStartStatusFailed
		}
		p.queueID = id
	case "shared":
		// Empty data marks the counter as not yet started, as the SDK's
		// example does from OnVMStart.
		if _, _, err := proxywasm.GetSharedData(sharedKey); err == types.ErrorStatusNotFound {
			_ = proxywasm.SetSharedData(sharedKey, nil, 0)
		}
	}
	proxywasm.LogDebugf("plugin started in mode %s", p.cfg.Mode)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext {
	switch p.cfg.Mode {
	case "headers":
		return &headers{id: id, name: p.cfg.Header, value: p.cfg.Value}
	case "body":
		return &setBody{}
	case "echo":
		return &echoBody{}
	case "routing":
		return &routing{dice: p.cfg.Dice}
	case "auth":
		return &authRandom{cluster: p.cfg.Cluster}
	case "shared":
		return &sharedCounter{}
	case "queue-sender":
		return &queueSender{queueID: p.queueID}
	case "metrics":
		return &metrics{}
	case "properties":
		return &properties{}
	case "json":
		return &jsonValidation{requiredKeys: p.cfg.RequiredKeys}
	case "postpone":
		return &postpone{id: id, plugin: p}
	case "noop":
		return &noop{}
	case "addheader":
		return &addHeader{}
	case "readbody":
		return &readBody{}
	case "foreign":
		return &foreign{}
	case "env":
		return &environ{}
	}
	return &noop{}
}

type noop struct{ types.DefaultHttpContext }
