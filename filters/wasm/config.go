package wasm

import (
	"encoding/json"
	"fmt"
	"strings"

	udpav1 "github.com/cncf/xds/go/udpa/type/v1"
	xdsv3 "github.com/cncf/xds/go/xds/type/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// pluginConfig is a compiled PluginConfig: what every instance of the
// plugin is started with.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/wasm/v3/wasm.proto
type pluginConfig struct {
	name, rootID, vmID string
	vmConfig           []byte // VmConfig.configuration, for proxy_on_vm_start
	pluginConfig       []byte // PluginConfig.configuration, for proxy_on_configure
	failOpen           bool
	hostEnvKeys        []string
	env                map[string]string
}

// runtimes lists the VmConfig.runtime values accepted. Every plugin runs
// on wazero whatever it names: a config written for Envoy's V8 works
// unchanged.
var runtimes = map[string]bool{
	"":                            true,
	"envoy.wasm.runtime.v8":       true,
	"envoy.wasm.runtime.wazero":   true,
	"envoy.wasm.runtime.wamr":     true,
	"envoy.wasm.runtime.wasmtime": true,
	"envoy.wasm.runtime.wavm":     true,
	"envoy.wasm.runtime.null":     false,
}

func compileConfig(pc *wasmv3.PluginConfig) (*pluginConfig, error) {
	if pc == nil {
		return nil, fmt.Errorf("config: is required")
	}
	vc := pc.GetVmConfig()
	if vc == nil {
		return nil, fmt.Errorf("config.vm_config: is required (vm references are not supported)")
	}
	if ok, known := runtimes[vc.GetRuntime()]; !ok {
		if known {
			return nil, fmt.Errorf("config.vm_config.runtime: %q runs plugins linked into Envoy, which Waygate cannot load", vc.GetRuntime())
		}
		if !strings.HasPrefix(vc.GetRuntime(), "envoy.wasm.runtime.") {
			return nil, fmt.Errorf("config.vm_config.runtime: unknown runtime %q (want envoy.wasm.runtime.v8 or another envoy.wasm.runtime.*)", vc.GetRuntime())
		}
	}
	c := &pluginConfig{
		name:   pc.GetName(),
		rootID: pc.GetRootId(),
		vmID:   vc.GetVmId(),
		env:    pluginEnv(vc.GetEnvironmentVariables().GetKeyValues()),
	}
	c.hostEnvKeys = vc.GetEnvironmentVariables().GetHostEnvKeys()
	var err error
	if c.vmConfig, err = configBytes(vc.GetConfiguration()); err != nil {
		return nil, fmt.Errorf("config.vm_config.configuration: %w", err)
	}
	if c.pluginConfig, err = configBytes(pc.GetConfiguration()); err != nil {
		return nil, fmt.Errorf("config.configuration: %w", err)
	}
	// fail_open is deprecated in favor of failure_policy; either opens.
	c.failOpen = pc.GetFailOpen() || pc.GetFailurePolicy() == wasmv3.FailurePolicy_FAIL_OPEN
	return c, nil
}

// configBytes is what a plugin reads as its configuration buffer, as
// Envoy builds it: a StringValue's string, a BytesValue's bytes, the
// JSON of a Struct or TypedStruct value (keys in order, the same bytes
// every time), else the message's wire bytes.
func configBytes(a *anypb.Any) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return a.GetValue(), nil
	}
	switch m := m.(type) {
	case *wrapperspb.StringValue:
		return []byte(m.GetValue()), nil
	case *wrapperspb.BytesValue:
		return m.GetValue(), nil
	case *structpb.Struct:
		return json.Marshal(m.AsMap())
	case *udpav1.TypedStruct:
		return json.Marshal(m.GetValue().AsMap())
	case *xdsv3.TypedStruct:
		return json.Marshal(m.GetValue().AsMap())
	}
	return a.GetValue(), nil
}
