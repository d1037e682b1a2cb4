// Package compressor is Envoy's HTTP compressor filter
// (envoy.extensions.filters.http.compressor.v3.Compressor) in the response
// direction: it compresses response bodies with gzip, zstd or brotli when
// the client accepts the encoding and the response qualifies, chunk by
// chunk as the body streams, so that an Istio EnvoyFilter adding
// compression at the gateway works on Waygate.
//
// It follows
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/compressor_filter
// and the comments of compressor.proto. The compressor library is a typed
// extension (gzip, zstd, brotli); per-route config is a
// CompressorPerRoute under FilterName in typed_per_filter_config. Request
// compression (request_direction_config enabled) is refused at config
// time rather than silently ignored.
package compressor
