// Package lua is Envoy's Lua HTTP filter (envoy.filters.http.lua), the
// filter Istio users add with an EnvoyFilter to script a gateway: a
// script defines envoy_on_request(request_handle) and
// envoy_on_response(response_handle), and the handle reads and changes
// headers, answers locally, logs, calls other clusters and reads the
// stream's details.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/lua_filter
//
// Scripts run on github.com/yuin/gopher-lua, a Lua 5.1 VM in Go (Envoy
// embeds LuaJIT, also Lua 5.1). Each compiled script keeps a pool of
// states that have run it, so its globals persist across requests as in
// Envoy's per-worker state. A script error is logged and the stream goes
// on, as in Envoy. Entry points run as coroutines, so that body() can
// wait for the whole body as Envoy's does; bodyChunks() and trailers are
// not supported: calling them raises a script error.
package lua
