package wasm

import (
	"context"
	"fmt"

	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// TypeURL is the config type the filter is registered under.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"

func init() {
	filters.Register(TypeURL, build)
}

func build(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*wasmfilterv3.Wasm)
	if !ok {
		return nil, fmt.Errorf("wasm: config is %T, want Wasm", cfg)
	}
	ctx := context.Background()
	code, err := loadPluginCode(ctx, pb.GetConfig(), env.Upstream, DefaultOptions())
	if err != nil {
		return nil, err
	}
	// The module's imports tell the ABI: http-wasm guests import the
	// http_handler module; anything else is taken for Proxy-Wasm, whose
	// build explains what a module that is neither lacks.
	if ok, _ := importsModule(code, httpHandlerModule); ok {
		return newHTTPWasm(ctx, pb, code, env, DefaultOptions())
	}
	return newFromCode(ctx, pb, code, env, DefaultOptions())
}
