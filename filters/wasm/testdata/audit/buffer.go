package main

import "strconv"

const bufferResponseBody = 1

// bodyCalls counts a stream's body callbacks, by stream and side.
var bodyCalls = map[[2]uint32]int{}

// bufferBody pauses each body chunk until the end of the stream, as
// Envoy's StopIterationAndBuffer, then replaces the body with what it
// saw: "<callbacks> <size at the end> <bytes read at the end>".
func bufferBody(id, side, size, end uint32) uint32 {
	k := [2]uint32{id, side}
	bodyCalls[k]++
	if end == 0 {
		return 1
	}
	p, _, o := out()
	proxyGetBufferBytes(side, 0, size, p, p+4)
	read := len(returned(o))
	n, _, no := out()
	proxyGetBufferStatus(side, n, n+4)
	summary := strconv.Itoa(bodyCalls[k]) + " " + strconv.Itoa(int(size)) + " " + strconv.Itoa(read) + " " + strconv.Itoa(int(no[0]))
	delete(bodyCalls, k)
	v, vn := str(summary)
	proxySetBufferBytes(side, 0, size, v, vn)
	return 0
}

//go:wasmexport proxy_on_response_body
func proxyOnResponseBody(id, size, end uint32) uint32 {
	enter()
	m := streams[id]
	switch m.abi {
	case "buffer-response":
		return bufferBody(id, bufferResponseBody, size, end)
	case "pause-response":
		// Headers held by a Pause: released by the Continue at the end.
		if end == 0 {
			return 1
		}
		addHeader(mapResponseHeaders, "x-resp-body-size", strconv.Itoa(int(size)))
		return 0
	}
	return 0
}
