package main

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// ABI cases, picked by the x-abi request header, for behaviors the SDK
// test plugins leave out: whole header maps, trailers, local replies
// with details and a gRPC status, closing and resuming streams (with
// ABI 0.1.0's names too), http call answers and shared data CAS.

const (
	mapRequestTrailers  = 1
	mapResponseTrailers = 3
	mapHTTPCallHeaders  = 6
	mapHTTPCallTrailers = 7
	bufferHTTPCall      = 4
)

// calls maps an http call's token to the stream that made it.
var calls = map[uint32]uint32{}

func itoa(n uint32) string { return strconv.Itoa(int(n)) }

func addHeader(typ uint32, k, v string) uint32 {
	kp, kn := str(k)
	vp, vn := str(v)
	return proxyAddHeaderMapValue(typ, kp, kn, vp, vn)
}

func pairs(typ uint32) []byte {
	p, _, o := out()
	if proxyGetHeaderMapPairs(typ, p, p+4) != 0 {
		return nil
	}
	return returned(o)
}

// requestCase runs the request-headers part of case c; pause reports
// that the stream waits.
func requestCase(id uint32, c string) (pause bool) {
	switch c {
	case "setpairs":
		size, _, o := out()
		proxyGetHeaderMapSize(mapRequestHeaders, size)
		sizeOK := int(o[0]) == len(pairs(mapRequestHeaders))
		m := keep(encodeMap(":method", "PUT", ":path", "/new?q=1", ":authority", "shop", ":scheme", "http", "x-only", "1", "x-size-ok", strconv.FormatBool(sizeOK)))
		proxySetHeaderMapPairs(mapRequestHeaders, addr(m), uint32(len(m)))
		k, kn := str("x-gone")
		proxyRemoveHeaderMapValue(mapRequestHeaders, k, kn)
	case "local":
		d, dn := str("audit_said_no")
		b, bn := str("no")
		h := keep(encodeMap("x-l", "1"))
		proxySendLocalResponse(418, d, dn, b, bn, addr(h), uint32(len(h)), 7)
		return true
	case "pause-headers":
		return true
	case "trap":
		*(*uint64)(unsafePointer(0xfffffff8)) = 1
	case "callout-request", "callout-request-v010", "callout-deny":
		// Held until the call answers, whatever the body callbacks say.
		h := keep(encodeMap(":method", "GET", ":path", "/auth", ":authority", "backend"))
		cl, cln := str("backend")
		tok := keep(make([]byte, 4))
		if proxyHTTPCall(cl, cln, addr(h), uint32(len(h)), 0, 0, 0, 0, 5000, addr(tok)) != 0 {
			return false
		}
		calls[uint32(tok[0])|uint32(tok[1])<<8|uint32(tok[2])<<16|uint32(tok[3])<<24] = id
		return true
	case "buffer":
		// The body's length changes: the headers go on without it.
		k, kn := str("content-length")
		proxyRemoveHeaderMapValue(mapRequestHeaders, k, kn)
	case "close-request":
		proxyCloseStream(0)
		return true
	case "foreign":
		// compress, then uncompress what it gave; an unknown name.
		var b strings.Builder
		call := func(name string, arg []byte) ([]byte, uint32) {
			n, nn := str(name)
			a := keep(arg)
			p, _, o := out()
			st := proxyCallForeignFunction(n, nn, addr(a), uint32(len(a)), p, p+4)
			return returned(o), st
		}
		z, st := call("compress", []byte("hello hello hello hello"))
		report(&b, "compress", st)
		b.WriteString("compressed " + hex.EncodeToString(z) + "\n")
		back, st := call("uncompress", z)
		report(&b, "uncompress", st)
		b.WriteString("back " + string(back) + "\n")
		_, st = call("uncompress", []byte("not zlib"))
		report(&b, "uncompress garbage", st)
		_, st = call("no_such_function", nil)
		report(&b, "unknown", st)
		respond(b.String())
		return true
	case "misc":
		var b strings.Builder
		lvl := keep(make([]byte, 4))
		report(&b, "log_level", proxyGetLogLevel(addr(lvl)))
		b.WriteString("level " + strconv.Itoa(int(lvl[0])) + "\n")
		now := keep(make([]byte, 8))
		report(&b, "time", proxyGetCurrentTimeNanoseconds(addr(now)))
		var ns uint64
		for i := 7; i >= 0; i-- {
			ns = ns<<8 | uint64(now[i])
		}
		b.WriteString("now " + strconv.FormatUint(ns, 10) + "\n")
		report(&b, "clear_route_cache", proxyClearRouteCache())
		report(&b, "done", proxyDone())
		respond(b.String())
		return true
	case "cas":
		k, kn := str("cas-key-" + strconv.Itoa(int(id)))
		v1, v1n := str("one")
		v2, v2n := str("two")
		var b strings.Builder
		report(&b, "set", proxySetSharedData(k, kn, v1, v1n, 0))
		p, _, o := out()
		cas := keep(make([]byte, 4))
		report(&b, "get", proxyGetSharedData(k, kn, p, p+4, addr(cas)))
		c := uint32(cas[0]) | uint32(cas[1])<<8 | uint32(cas[2])<<16 | uint32(cas[3])<<24
		b.WriteString("value " + string(returned(o)) + "\n")
		report(&b, "stale", proxySetSharedData(k, kn, v2, v2n, c+1))
		report(&b, "fresh", proxySetSharedData(k, kn, v2, v2n, c))
		report(&b, "again", proxySetSharedData(k, kn, v1, v1n, c))
		report(&b, "missing", proxyGetSharedData(v1, v1n, p, p+4, addr(cas)))
		respond(b.String())
		return true
	}
	return false
}

// responseCase runs the response-headers part of case c.
func responseCase(id uint32, c string) (pause bool) {
	switch c {
	case "buffer-response":
		k, kn := str("content-length")
		proxyRemoveHeaderMapValue(mapResponseHeaders, k, kn)
	case "close-response":
		proxyCloseStream(1)
		return true
	case "pause-response":
		return true
	case "dispatches":
		return dispatch(id)
	case "callout", "callout-v010":
		h := keep(encodeMap(":method", "GET", ":path", "/callout", ":authority", "backend"))
		cl, cln := str("backend")
		tok := keep(make([]byte, 4))
		if st := proxyHTTPCall(cl, cln, addr(h), uint32(len(h)), 0, 0, 0, 0, 5000, addr(tok)); st != 0 {
			addHeader(mapResponseHeaders, "x-call-error", strconv.Itoa(int(st)))
			return false
		}
		calls[uint32(tok[0])|uint32(tok[1])<<8|uint32(tok[2])<<16|uint32(tok[3])<<24] = id
		return true
	}
	return false
}

//go:wasmexport proxy_on_http_call_response
func proxyOnHTTPCallResponse(root, token, headers, bodySize, trailers uint32) {
	enter()
	if drainAnswer(token) || dispatchAnswer(token) {
		return
	}
	id, ok := calls[token]
	if !ok {
		return
	}
	delete(calls, token)
	proxySetEffectiveContext(id)
	status := header(mapHTTPCallHeaders, ":status")
	switch streams[id].abi {
	case "callout-request":
		addHeader(mapRequestHeaders, "x-call-status", status)
		proxyContinueStream(0)
		return
	case "callout-request-v010":
		addHeader(mapRequestHeaders, "x-call-status", status)
		proxyContinueRequest()
		return
	case "callout-deny":
		b, bn := str("denied")
		proxySendLocalResponse(403, 0, 0, b, bn, 0, 0, ^uint32(0))
		return
	}
	ct := header(mapHTTPCallHeaders, "content-type")
	p, _, o := out()
	proxyGetBufferBytes(bufferHTTPCall, 0, bodySize, p, p+4)
	body := returned(o)
	addHeader(mapResponseHeaders, "x-call", status+" "+ct+" "+strconv.Itoa(len(body))+" "+strconv.Itoa(int(headers))+" "+strconv.Itoa(int(trailers)))
	addHeader(mapResponseHeaders, "x-call-readonly", strconv.Itoa(int(addHeader(mapHTTPCallHeaders, "x-no", "1"))))
	if streams[id].abi == "callout-v010" {
		proxyContinueResponse()
		return
	}
	proxyContinueStream(1)
}

//go:wasmexport proxy_on_request_trailers
func proxyOnRequestTrailers(id, n uint32) uint32 {
	enter()
	m := streams[id]
	m.reqTrailer = header(mapRequestTrailers, "x-rt") + " " + strconv.Itoa(int(n))
	addHeader(mapRequestTrailers, "x-rt-added", "yes")
	return 0
}

//go:wasmexport proxy_on_response_trailers
func proxyOnResponseTrailers(id, n uint32) uint32 {
	enter()
	v := header(mapResponseTrailers, "x-st")
	k, kn := str("x-st")
	nv, nvn := str("changed-" + v)
	proxyReplaceHeaderMapValue(mapResponseTrailers, k, kn, nv, nvn)
	addHeader(mapResponseTrailers, "x-trailer-calls", strconv.Itoa(int(n)))
	return 0
}
