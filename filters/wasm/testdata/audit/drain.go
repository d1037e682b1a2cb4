package main

// A root context configured "drain" finishes an http call before it is
// done: proxy_on_done returns false, and the call's answer calls
// proxy_done.

var (
	drainCalls = map[uint32]uint32{} // token -> root context
	drained    = map[uint32]bool{}
)

func drain(root uint32) uint32 {
	h := keep(encodeMap(":method", "GET", ":path", "/flush", ":authority", "backend"))
	cl, cln := str("backend")
	tok := keep(make([]byte, 4))
	if proxyHTTPCall(cl, cln, addr(h), uint32(len(h)), 0, 0, 0, 0, 5000, addr(tok)) != 0 {
		return 1
	}
	drainCalls[uint32(tok[0])|uint32(tok[1])<<8|uint32(tok[2])<<16|uint32(tok[3])<<24] = root
	return 0
}

// drainAnswer handles the answer of a drain call, if token is one.
func drainAnswer(token uint32) bool {
	root, ok := drainCalls[token]
	if !ok {
		return false
	}
	delete(drainCalls, token)
	drained[root] = true
	rootEvent(root, "answered")
	rootRecord(root, "proxy_done", itoa(proxyDone()))
	return true
}
