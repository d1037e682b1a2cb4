package main

// The SDK's multiple_dispatches example: the response headers wait on
// ten http calls, made with an empty :authority as the example makes
// them, and go on once every one answered.

const dispatches = 10

var (
	dispatchCalls = map[uint32]uint32{} // token -> stream
	pending       = map[uint32]int{}    // stream -> calls not answered
)

func dispatch(id uint32) bool {
	h := keep(encodeMap(":path", "/", ":method", "GET", ":authority", ""))
	cl, cln := str("backend")
	for range dispatches {
		tok := keep(make([]byte, 4))
		if st := proxyHTTPCall(cl, cln, addr(h), uint32(len(h)), 0, 0, 0, 0, 50000, addr(tok)); st != 0 {
			addHeader(mapResponseHeaders, "x-dispatch-error", itoa(st))
			return false
		}
		dispatchCalls[uint32(tok[0])|uint32(tok[1])<<8|uint32(tok[2])<<16|uint32(tok[3])<<24] = id
		pending[id]++
	}
	return true
}

// dispatchAnswer handles the answer of a dispatched call, if token is one.
func dispatchAnswer(token uint32) bool {
	id, ok := dispatchCalls[token]
	if !ok {
		return false
	}
	delete(dispatchCalls, token)
	pending[id]--
	if pending[id] == 0 {
		delete(pending, id)
		proxySetEffectiveContext(id)
		addHeader(mapResponseHeaders, "total-dispatched", itoa(dispatches))
		proxyContinueStream(1)
	}
	return true
}
