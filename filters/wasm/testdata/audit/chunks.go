package main

import "strings"

// The SDK's http_body_chunk example: each body callback reads only the
// bytes it has not read yet (the buffer holds everything so far, since
// the plugin paused on every chunk) and answers 403 on a pattern.

var bodyRead = map[uint32]int{} // stream -> bytes read so far
var bodyChunks = map[uint32]int{}

func chunks(id, size, end uint32) uint32 {
	if n := int(size) - bodyRead[id]; n > 0 {
		bodyChunks[id]++
		p, _, o := out()
		if proxyGetBufferBytes(bufferRequestBody, uint32(bodyRead[id]), uint32(n), p, p+4) != 0 {
			return 0
		}
		chunk := returned(o)
		bodyRead[id] += len(chunk)
		if len(chunk) != n {
			respondStatus(500, "read "+itoa(uint32(len(chunk)))+" of "+itoa(uint32(n)))
			return 1
		}
		if strings.Contains(string(chunk), "pattern") {
			respondStatus(403, "pattern found in chunk: "+itoa(uint32(bodyChunks[id])))
			return 1
		}
	}
	if end == 0 {
		return 1
	}
	if bodyRead[id] != int(size) {
		respondStatus(500, "read "+itoa(uint32(bodyRead[id]))+" of "+itoa(size))
		return 1
	}
	return 0
}

func respondStatus(code uint32, body string) {
	b, bn := str(body)
	proxySendLocalResponse(code, 0, 0, b, bn, 0, 0, ^uint32(0))
}
