// Package wasm is Waygate's Proxy-Wasm host: it runs WebAssembly
// plugins built for Envoy as the HTTP filter configured by
// envoy.extensions.filters.http.wasm.v3.Wasm, on the wazero runtime.
//
// It follows the Proxy-Wasm ABI v0.2.1
// (https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1),
// accepting the 0.2.0 and 0.1.0 names older SDKs import, and Envoy's
// behavior where the spec leaves room: property paths and their
// serialization, the configuration buffer, fail_open and the 503 of a
// failed plugin.
//
// A Factory compiles the plugin once and keeps a pool of instances
// (about one per core, as Envoy has one per worker thread). A stream is
// pinned to one instance, whose callbacks are serialized; shared data,
// queues and metrics live in the host, by vm_id. A trap, a panic, a call
// past its deadline or memory past its limit kills that instance only:
// it is replaced, and the stream that crashed it gets the plugin's fail
// strategy. See README.md for the fields acted on, stats and failures.
package wasm
