package wasm

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/textproto"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/waygate/waygate/filters"
)

// HTTP callouts.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#http-calls

const (
	// defaultCallTimeout applies when a plugin passes a zero timeout.
	defaultCallTimeout = 5 * time.Second
	// maxCallResponse bounds the body of an http call's answer that the
	// host holds for the plugin.
	maxCallResponse = 4 << 20
)

// proxyHTTPCall sends a request to a cluster through the gateway's
// upstreams and returns at once; the answer comes later through
// proxy_on_http_call_response on the root context that made it, with
// the call's id, from the goroutine that waited for it.
var proxyHTTPCall = sf(10, func(_ context.Context, v *vm, m api.Module, s []uint64) status {
	cluster, ok1 := readString(m, u32(s[0]), u32(s[1]))
	hb, ok2 := read(m, u32(s[2]), u32(s[3]))
	var req *http.Request
	var body []byte
	if ok2 {
		body, ok2 = read(m, u32(s[4]), u32(s[5]))
		body = bytes.Clone(body)
	}
	tb, ok3 := read(m, u32(s[6]), u32(s[7]))
	if !ok1 || !ok2 || !ok3 {
		return statusInvalidMemoryAccess
	}
	var method, path, authority, scheme string
	// Envoy asks for an :authority field, which may be empty (the SDK's
	// multiple_dispatches example sends one).
	hasAuthority := false
	header := http.Header{}
	err := decodeMap(hb, func(k, val []byte) {
		switch string(k) {
		case ":method":
			method = string(val)
		case ":path":
			path = string(val)
		case ":authority", "host":
			authority, hasAuthority = string(val), true
		case ":scheme":
			scheme = string(val)
		default:
			header.Add(textproto.CanonicalMIMEHeaderKey(string(k)), string(val))
		}
	})
	if err != nil || method == "" || path == "" || !hasAuthority || cluster == "" {
		return statusBadArgument
	}
	if scheme == "" {
		scheme = "http"
	}
	up := v.pool.env.Upstream
	if up == nil {
		return statusInternalFailure
	}
	if filters.ClusterMissing(up, cluster) {
		// Envoy refuses a call to a cluster it does not have at once.
		return statusBadArgument
	}
	timeout := time.Duration(u32(s[8])) * time.Millisecond
	if timeout <= 0 {
		timeout = defaultCallTimeout
	}
	req, err = http.NewRequest(method, scheme+"://"+authority+path, bytes.NewReader(body))
	if err != nil {
		return statusBadArgument
	}
	req.Header = header
	req.Host = authority
	if len(tb) > 0 {
		req.Trailer = http.Header{}
		if decodeMap(tb, func(k, val []byte) { req.Trailer.Add(string(k), string(val)) }) != nil {
			return statusBadArgument
		}
	}
	v.nextCallID++
	id := v.nextCallID
	if !writeU32(m, u32(s[9]), id) {
		return statusInvalidMemoryAccess
	}
	go v.httpCall(v.rootOfActive(), id, cluster, req, timeout)
	return statusOK
})

// httpCall waits for the answer and hands it to the plugin. A failed
// call is answered with no headers, which tells the plugin it failed.
func (v *vm) httpCall(root, id uint32, cluster string, req *http.Request, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var cr *callResponse
	resp, err := v.pool.env.Upstream.RoundTrip(ctx, cluster, req.WithContext(ctx))
	if err == nil {
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxCallResponse))
		resp.Body.Close()
		if rerr == nil {
			cr = &callResponse{status: resp.StatusCode, header: resp.Header, trailer: resp.Trailer, body: b}
		}
	}
	if cr == nil {
		v.log.Debug("wasm http call failed", "cluster", cluster, "error", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead.Load() || v.fn.onHTTPCallResponse == nil || v.rootByID[root] == nil {
		return
	}
	var nh, nb, nt int
	if cr != nil {
		nh = 1 + len(cr.header)
		nb = len(cr.body)
		nt = len(cr.trailer)
	} else {
		cr = &callResponse{}
	}
	v.callResp = cr
	v.enterRoot(root)
	v.stack[0], v.stack[1], v.stack[2], v.stack[3], v.stack[4] = uint64(root), uint64(id), uint64(nh), uint64(nb), uint64(nt)
	_, _ = v.invoke(v.fn.onHTTPCallResponse)
	v.callResp = nil
}
