// Package http1 is the gateway's HTTP/1.1 server: plaintext HTTP/1.0
// and HTTP/1.1 connections are parsed here and handed to the connection
// manager as *http.Request values with an http.ResponseWriter, so the
// connection manager and every filter run unchanged. HTTP/2 (the h2c
// prior-knowledge preface, see Sniff) and TLS connections stay on
// net/http's server.
//
// Why not net/http's server: the request hot path of a proxy is a parse,
// a handler call and a write, and net/http spends more than the proxy
// itself around them. Per request it allocates a context pair, a
// response, a bufio-backed chunk writer, a string per header name and
// value and a clone of the response header map, and it starts a
// goroutine that reads the connection while the handler runs. Here a
// request head costs one string for its text, one header map and one
// array for its values (common names are interned, canonical ones are
// substrings), the response writer and buffers belong to the connection,
// the Date line is formatted once a second, and the watch for a client
// that went away starts only for requests still running after
// bgReadDelay. The request, its header map and the response writer are
// the connection's, reset between requests. BenchmarkServer in this
// package compares the two servers behind the same handler, one
// keep-alive connection, a 1 KiB response:
//
//	go test -run XXX -bench Server -benchmem -count 5 ./gateway/http1
//
// On the 2-core development machine: 27-35µs, 952 B and 15 allocations
// per request here against 37-45µs, 3048 B and 30 with net/http, the
// client's ReadResponse (about 12 of those allocations) included.
// BenchmarkProxyEmptyChain in gateway/hcm measures the whole proxy: 93
// allocations per request against 123 with net/http's server and codec
// (WAYGATE_HTTP1=nethttp), client and backend included (81 since the
// changes below). BenchmarkRawEmptyChain drives the same path with a
// client and backend that allocate nothing: 13 allocations and 2.7 KiB
// per request are the gateway's own.
//
// An idle keep-alive connection gives its write buffer back between
// exchanges and, idle for a second, its read buffer, exchange state and
// goroutine (see idle.go): TestIdleConnMemory in gateway/hcm, heap and
// stacks per idle connection, went from 22.7 KiB to 6.5 KiB with it. Idle and
// header timeouts cost no timer per request: a sweep enforces the idle
// timeout, and a head that arrived whole needs no read deadline.
//
// net/http's server is also lenient where a proxy must not be: it
// accepts obs-fold, bare LF line ends, and Content-Length with
// Transfer-Encoding (dropping the length), and forwards such requests,
// as TestAmbiguousRequestsAreNotForwarded in gateway/hcm shows when run
// with WAYGATE_HTTP1=nethttp.
//
// Parsing is strict where leniency lets two parsers disagree about where
// a request ends (RFC 9112 section 11.2, request smuggling): obs-fold,
// a line ended by a bare LF, a duplicate or malformed Content-Length,
// Content-Length with Transfer-Encoding, Transfer-Encoding in HTTP/1.0
// and a transfer coding other than one final chunked get 400 (501 for a
// coding that is only unknown), invalid chunked framing gets 400, an
// oversized head gets 431 (414 for the request line alone), an unknown
// Expect gets 417; each closes the connection. Keep-alive, pipelining,
// Expect: 100-continue, chunked request and response bodies, trailers,
// Connection: close, HTTP/1.0 and Hijack (upgrades) behave as with
// net/http.
//
// Setting the environment variable WAYGATE_HTTP1=nethttp sends every
// connection to net/http's server instead, and has the upstream
// connection pool write requests and read responses with net/http's
// codec too (see gateway/upstream), as before this package.
package http1
