package main

import (
	"encoding/hex"
	"os"
	"strconv"
	"strings"
)

const (
	mapRequestHeaders  = 0
	mapResponseHeaders = 2
	bufferRequestBody  = 0
	bufferPluginConfig = 7
)

// mode is what a stream asked for in its request headers.
type mode struct{ props, respProps, hostile, abi, reqTrailer string }

var streams = map[uint32]*mode{}

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(id, size uint32) uint32 { return 1 }

// proxyOnConfigure aborts as the configuration asks: abort=panic (a Go
// panic), abort=trap (an out-of-bounds store), abort=exit (os.Exit,
// which is WASI's proc_exit, as an AssemblyScript abort ends).
//
//go:wasmexport proxy_on_configure
func proxyOnConfigure(id, size uint32) uint32 {
	enter()
	p, _, o := out()
	proxyGetBufferBytes(bufferPluginConfig, 0, size, p, p+4)
	conf := string(returned(o))
	rootConf[id] = conf
	switch conf {
	case "abort=panic":
		panic("on_configure aborts")
	case "abort=trap":
		*(*uint64)(unsafePointer(0xfffffff8)) = 1
	case "abort=exit":
		os.Exit(3)
	}
	return 1
}

// roots are the root contexts, by id, with their plugin_root_id, and
// rootConf their plugin configuration.
var (
	roots    = map[uint32]string{}
	rootConf = map[uint32]string{}
)

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(id, parent uint32) {
	if parent != 0 {
		streams[id] = &mode{}
		return
	}
	roots[id] = vmIDOf(property("plugin_root_id"))
}

// rootEvent records in shared data that a root context reached a step
// of its end: key "<root_id>-<event>".
func rootEvent(id uint32, event string) {
	rootRecord(id, event, "yes")
}

func rootRecord(id uint32, event, value string) {
	name, ok := roots[id]
	if !ok {
		return
	}
	k, kn := str(name + "-" + event)
	v, vn := str(value)
	proxySetSharedData(k, kn, v, vn, 0)
}

func header(typ uint32, name string) string {
	k, kn := str(name)
	p, _, o := out()
	if proxyGetHeaderMapValue(typ, k, kn, p, p+4) != 0 {
		return ""
	}
	return string(returned(o))
}

// property answers "<status> <hex value>" for a path whose segments
// are separated by "/".
func property(path string) string {
	k, kn := str(strings.ReplaceAll(path, "/", "\x00"))
	p, _, o := out()
	st := proxyGetProperty(k, kn, p, p+4)
	return strconv.Itoa(int(st)) + " " + hex.EncodeToString(returned(o))
}

// x-props lists request-time properties answered in a local response,
// x-resp-props response-time ones added to the response as x-prop
// headers, x-set-props path=value pairs set first; x-hostile names the
// phase whose hostcalls get bad pointers.
//
//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(id, n, end uint32) uint32 {
	enter()
	m := streams[id]
	m.respProps = header(mapRequestHeaders, "x-resp-props")
	m.hostile = header(mapRequestHeaders, "x-hostile")
	m.abi = header(mapRequestHeaders, "x-abi")
	if r := header(mapRequestHeaders, "x-abi-root"); r != "" && r != vmIDOf(property("plugin_root_id")) {
		// The case is for another plugin of the chain.
		m.abi = ""
	}
	if f := header(mapRequestHeaders, "x-fuzz"); f != "" {
		s, _ := strconv.ParseUint(f, 10, 64)
		respond(fuzz(id, s, 300))
		return 1
	}
	if m.abi == "count" {
		// num_headers against the fields the map holds.
		b := pairs(mapRequestHeaders)
		respond(strconv.Itoa(int(n)) + " " + strconv.Itoa(int(b[0])|int(b[1])<<8))
		return 1
	}
	if requestCase(id, m.abi) {
		return 1
	}
	if set := header(mapRequestHeaders, "x-set-props"); set != "" {
		for _, kv := range strings.Split(set, ",") {
			k, v, _ := strings.Cut(kv, "=")
			kp, kn := str(strings.ReplaceAll(k, "/", "\x00"))
			vp, vn := str(v)
			proxySetProperty(kp, kn, vp, vn)
		}
	}
	if props := header(mapRequestHeaders, "x-props"); props != "" {
		var b strings.Builder
		for _, p := range strings.Split(props, ",") {
			b.WriteString(p + " " + property(p) + "\n")
		}
		respond(b.String())
		return 1
	}
	if m.hostile == "headers" {
		respond(hostile())
		return 1
	}
	return 0
}

//go:wasmexport proxy_on_request_body
func proxyOnRequestBody(id, size, end uint32) uint32 {
	enter()
	switch streams[id].abi {
	case "chunks":
		return chunks(id, size, end)
	case "buffer":
		return bufferBody(id, bufferRequestBody, size, end)
	case "pause-headers":
		// Headers held by a Pause, then the whole body: Envoy calls the
		// body callbacks meanwhile, and a Continue here releases both.
		if end == 0 {
			return 1
		}
		addHeader(mapRequestHeaders, "x-body-size", strconv.Itoa(int(size)))
		return 0
	}
	if streams[id].hostile != "body" || end == 0 {
		return 0
	}
	var b strings.Builder
	report(&b, "proxy_get_buffer_bytes/body", proxyGetBufferBytes(bufferRequestBody, 0, size, bad, bad))
	report(&b, "proxy_set_buffer_bytes/value", proxySetBufferBytes(bufferRequestBody, 0, 0, bad, 4))
	report(&b, "proxy_get_buffer_status/body", proxyGetBufferStatus(bufferRequestBody, bad, bad))
	respond(b.String())
	return 1
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(id, n, end uint32) uint32 {
	enter()
	m := streams[id]
	if m.reqTrailer != "" {
		addHeader(mapResponseHeaders, "x-saw-request-trailer", m.reqTrailer)
	}
	if responseCase(id, m.abi) {
		return 1
	}
	if m.respProps == "" {
		return 0
	}
	for _, p := range strings.Split(m.respProps, ",") {
		k, kn := str("x-prop")
		v, vn := str(p + " " + property(p))
		proxyAddHeaderMapValue(mapResponseHeaders, k, kn, v, vn)
	}
	return 0
}

//go:wasmexport proxy_on_done
func proxyOnDone(id uint32) uint32 {
	enter()
	rootEvent(id, "done")
	if rootConf[id] == "drain" {
		// Not done yet: an http call is to finish first, whose answer
		// calls proxy_done.
		return drain(id)
	}
	return 1
}

//go:wasmexport proxy_on_delete
func proxyOnDelete(id uint32) {
	enter()
	if drained[id] {
		rootRecord(id, "deleted", "after the answer")
	} else {
		rootEvent(id, "deleted")
	}
	delete(bodyRead, id)
	delete(bodyChunks, id)
	delete(streams, id)
	delete(roots, id)
}

func respond(body string) {
	b, bn := str(body)
	proxySendLocalResponse(200, 0, 0, b, bn, 0, 0, ^uint32(0))
}

func report(b *strings.Builder, name string, st uint32) {
	b.WriteString(name + " " + strconv.Itoa(int(st)) + "\n")
}

// hostile calls every hostcall with a pointer or a length out of the
// plugin's memory, each where the call would otherwise succeed, and
// reports the statuses.
func hostile() string {
	var b strings.Builder
	r := func(name string, st uint32) { report(&b, name, st) }
	key, keyN := str("x-key")
	val, valN := str("value")
	good, _, _ := out()

	r("proxy_log/message", proxyLog(2, bad, 8))
	r("proxy_log/length", proxyLog(2, val, 0xFFFFFFFF))
	r("proxy_get_log_level", proxyGetLogLevel(bad))
	r("proxy_get_current_time_nanoseconds", proxyGetCurrentTimeNanoseconds(bad))
	r("proxy_get_buffer_bytes/config", proxyGetBufferBytes(bufferPluginConfig, 0, 100, bad, bad))
	r("proxy_get_buffer_status/config", proxyGetBufferStatus(bufferPluginConfig, bad, bad))
	r("proxy_get_configuration", proxyGetConfiguration(bad, bad))
	r("proxy_get_header_map_pairs", proxyGetHeaderMapPairs(mapRequestHeaders, bad, bad))
	r("proxy_get_header_map_size", proxyGetHeaderMapSize(mapRequestHeaders, bad))
	r("proxy_set_header_map_pairs", proxySetHeaderMapPairs(mapRequestHeaders, bad, 64))
	r("proxy_get_header_map_value/key", proxyGetHeaderMapValue(mapRequestHeaders, bad, 4, good, good+4))
	hk, hkn := str("x-hostile")
	r("proxy_get_header_map_value/result", proxyGetHeaderMapValue(mapRequestHeaders, hk, hkn, bad, bad))
	r("proxy_add_header_map_value/key", proxyAddHeaderMapValue(mapRequestHeaders, bad, 4, val, valN))
	r("proxy_add_header_map_value/value", proxyAddHeaderMapValue(mapRequestHeaders, key, keyN, bad, 4))
	r("proxy_replace_header_map_value/key", proxyReplaceHeaderMapValue(mapRequestHeaders, bad, 4, val, valN))
	r("proxy_replace_header_map_value/value", proxyReplaceHeaderMapValue(mapRequestHeaders, key, keyN, bad, 4))
	r("proxy_remove_header_map_value", proxyRemoveHeaderMapValue(mapRequestHeaders, bad, 4))
	r("proxy_get_property/path", proxyGetProperty(bad, 4, good, good+4))
	pn, pnn := str("plugin_name")
	r("proxy_get_property/result", proxyGetProperty(pn, pnn, bad, bad))
	r("proxy_set_property/path", proxySetProperty(bad, 4, val, valN))
	r("proxy_set_property/value", proxySetProperty(key, keyN, bad, 4))
	r("proxy_set_shared_data/key", proxySetSharedData(bad, 4, val, valN, 0))
	r("proxy_set_shared_data/value", proxySetSharedData(key, keyN, bad, 4, 0))
	proxySetSharedData(key, keyN, val, valN, 0)
	r("proxy_get_shared_data/key", proxyGetSharedData(bad, 4, good, good+4, good))
	r("proxy_get_shared_data/result", proxyGetSharedData(key, keyN, bad, bad, good))
	r("proxy_get_shared_data/cas", proxyGetSharedData(key, keyN, good, good+4, bad))
	qn, qnn := str("audit-queue")
	r("proxy_register_shared_queue/name", proxyRegisterSharedQueue(bad, 4, good))
	r("proxy_register_shared_queue/token", proxyRegisterSharedQueue(qn, qnn, bad))
	proxyRegisterSharedQueue(qn, qnn, good)
	token := *(*uint32)(unsafePointer(good))
	vmID := property("plugin_vm_id")
	vp, vpn := str(vmIDOf(vmID))
	r("proxy_resolve_shared_queue/vm", proxyResolveSharedQueue(bad, 4, qn, qnn, good))
	r("proxy_resolve_shared_queue/name", proxyResolveSharedQueue(vp, vpn, bad, 4, good))
	r("proxy_resolve_shared_queue/token", proxyResolveSharedQueue(vp, vpn, qn, qnn, bad))
	r("proxy_enqueue_shared_queue", proxyEnqueueSharedQueue(token, bad, 4))
	proxyEnqueueSharedQueue(token, val, valN)
	r("proxy_dequeue_shared_queue", proxyDequeueSharedQueue(token, bad, bad))
	r("proxy_define_metric/name", proxyDefineMetric(0, bad, 4, good))
	mn, mnn := str("audit_metric")
	r("proxy_define_metric/id", proxyDefineMetric(0, mn, mnn, bad))
	proxyDefineMetric(0, mn, mnn, good)
	metric := *(*uint32)(unsafePointer(good))
	r("proxy_get_metric", proxyGetMetric(metric, bad))
	hdrs := keep(encodeMap(":method", "GET", ":path", "/", ":authority", "backend"))
	cl, cln := str("backend")
	r("proxy_http_call/upstream", proxyHTTPCall(bad, 4, addr(hdrs), uint32(len(hdrs)), 0, 0, 0, 0, 1000, good))
	r("proxy_http_call/headers", proxyHTTPCall(cl, cln, bad, 64, 0, 0, 0, 0, 1000, good))
	r("proxy_http_call/body", proxyHTTPCall(cl, cln, addr(hdrs), uint32(len(hdrs)), bad, 4, 0, 0, 1000, good))
	r("proxy_http_call/token", proxyHTTPCall(cl, cln, addr(hdrs), uint32(len(hdrs)), 0, 0, 0, 0, 1000, bad))
	svc, svcn := str("test.Echo")
	r("proxy_grpc_call/service", proxyGRPCCall(cl, cln, bad, 4, svc, svcn, 0, 0, val, valN, 1000, good))
	r("proxy_grpc_stream/method", proxyGRPCStream(cl, cln, svc, svcn, bad, 4, 0, 0, good))
	r("proxy_send_local_response/body", proxySendLocalResponse(200, 0, 0, bad, 4, 0, 0, ^uint32(0)))
	r("proxy_send_local_response/headers", proxySendLocalResponse(200, 0, 0, val, valN, bad, 16, ^uint32(0)))
	r("proxy_call_foreign_function", proxyCallForeignFunction(bad, 4, bad, 4, bad, bad))
	r("proxy_no_such_hostcall", proxyNoSuchHostcall(bad))
	return b.String()
}

// vmIDOf decodes property's answer for a string property.
func vmIDOf(answer string) string {
	_, h, _ := strings.Cut(answer, " ")
	b, _ := hex.DecodeString(h)
	return string(b)
}

// encodeMap serializes pairs in the ABI's map form.
func encodeMap(kv ...string) []byte {
	n := len(kv) / 2
	b := make([]byte, 4+8*n)
	put := func(at int, v uint32) {
		b[at], b[at+1], b[at+2], b[at+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	put(0, uint32(n))
	for i := 0; i < n; i++ {
		put(4+8*i, uint32(len(kv[2*i])))
		put(8+8*i, uint32(len(kv[2*i+1])))
	}
	for i := 0; i < n; i++ {
		b = append(append(b, kv[2*i]...), 0)
		b = append(append(b, kv[2*i+1]...), 0)
	}
	return b
}
