// Command httpwasm is the http-wasm guest of the host's tests, written
// against the raw ABI with standard Go. Its configuration, the mode's
// name or a JSON object with a "mode" key (as a WasmPlugin's
// pluginConfig arrives), picks a mode:
//
//   - noop: next, nothing else (benchmarks).
//   - addheader: adds x-wasm: 1 to the request (benchmarks).
//   - tck: the conformance cases of the http-wasm TCK, chosen by the
//     x-httpwasm-tck-testid request header; every feature enabled at start.
//   - features: one behavior per request, chosen by x-test.
//   - faults: crashes as x-fault says (trap, panic, loop, oom), in
//     handle_request, or in handle_response with x-fault-response.
//   - startpanic: panics while starting.
package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"unsafe"
)

func main() {}

var (
	mode     string
	features uint32
)

func init() {
	mode = config()
	if strings.HasPrefix(mode, "{") {
		var c struct{ Mode string }
		if err := json.Unmarshal([]byte(mode), &c); err != nil {
			panic("configuration: " + err.Error())
		}
		mode = c.Mode
	}
	switch mode {
	case "tck":
		features = enableFeatures(featureBufferRequest | featureBufferResponse | featureTrailers)
	case "startpanic":
		panic("the guest refuses to start")
	}
}

//go:wasmexport handle_request
func handleRequest() uint64 {
	switch mode {
	case "noop":
		return 1
	case "addheader":
		addHeader(kindRequest, "x-wasm", "1")
		return 1
	case "tck":
		return tck()
	case "features":
		return feature(header(kindRequest, "x-test"))
	case "faults":
		return fault()
	}
	setStatusCode(500)
	write(kindResponse, "unknown mode "+mode)
	return 0
}

//go:wasmexport handle_response
func handleResponse(reqCtx, isError uint32) {
	switch mode {
	case "tck":
		tckResponse(reqCtx, isError)
	case "features":
		featureResponse(reqCtx, isError)
	case "faults":
		if reqCtx != 0 {
			crash(faults[reqCtx])
		}
	}
}

// next returns ctx_next: proceed, handing ctx to handle_response.
func next(ctx uint32) uint64 { return uint64(ctx)<<32 | 1 }

var faults = map[uint32]string{1: "trap", 2: "panic", 3: "loop", 4: "oom"}

// hoard keeps what the oom fault allocates reachable.
var hoard [][]byte

func crash(how string) {
	switch how {
	case "trap":
		p := (*uint64)(unsafe.Pointer(uintptr(0xfffffff8)))
		*p = 1
	case "panic":
		panic("the guest panics")
	case "loop":
		for i := 0; ; i++ {
			if i < 0 {
				break
			}
		}
	case "oom":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	}
}

func fault() uint64 {
	crash(header(kindRequest, "x-fault"))
	setHeader(kindResponse, "x-served-by", "wasm")
	if f := header(kindRequest, "x-fault-response"); f != "" {
		for k, v := range faults {
			if v == f {
				return next(k)
			}
		}
	}
	return 1
}

// feature runs one behavior of the features mode.
func feature(test string) uint64 {
	switch test {
	case "local":
		setStatusCode(401)
		setHeader(kindResponse, "www-authenticate", `Basic realm="test"`)
		write(kindResponse, "denied")
		return 0
	case "empty-local":
		return 0
	case "config":
		write(kindResponse, config())
		return 0
	case "host":
		write(kindResponse, header(kindRequest, "host")+" "+strings.Join(values(kindRequest, "Host"), ","))
		return 0
	case "proto":
		write(kindResponse, proto())
		return 0
	case "source":
		write(kindResponse, srcAddr())
		return 0
	case "log":
		logf(0, "info from the guest")
		logf(2, "error from the guest")
		write(kindResponse, strconv.Itoa(int(logEnabled(-1)))+strconv.Itoa(int(logEnabled(0)))+strconv.Itoa(int(logEnabled(3))))
		return 0
	case "trailers":
		got := enableFeatures(featureTrailers)
		write(kindResponse, strconv.Itoa(int(got&featureTrailers))+" "+strconv.Itoa(len(names(kindRequestTrailers))))
		return 0
	case "reqctx":
		enableFeatures(featureBufferResponse)
		return next(42)
	case "bufresp":
		enableFeatures(featureBufferResponse)
		return next(1)
	case "bufreq":
		enableFeatures(featureBufferRequest)
		b := body(kindRequest, 7)
		setHeader(kindRequest, "x-body-len", strconv.Itoa(len(b)))
		return 1
	case "bufreq-part", "readnobuf-part":
		if test == "bufreq-part" {
			enableFeatures(featureBufferRequest)
		}
		buf := make([]byte, 4)
		r := readBody(kindRequest, bp(buf), 4)
		setHeader(kindRequest, "x-first", string(buf[:uint32(r)]))
		return 1
	case "readnobuf":
		b := body(kindRequest, 1024)
		setHeader(kindRequest, "x-body-len", strconv.Itoa(len(b)))
		return 1
	case "writereq":
		write(kindRequest, "replaced ")
		write(kindRequest, "body")
		return 1
	case "prebody":
		write(kindResponse, "pre:")
		return 1
	case "route":
		setHeader(kindRequest, "host", "web-canary")
		return 1
	case "after-next-request":
		return next(2)
	case "after-next-response":
		return next(3)
	case "bad-uri":
		p, n := sp("no slash")
		setURI(p, n)
		return 1
	case "future":
		futureFunction()
		return 1
	case "bad-status":
		setStatusCode(101)
		return 0
	case "trailer-set":
		setHeader(3, "grpc-status", "0")
		return 1
	case "trailers-off":
		// buffer_response without trailers: handle_response reads none.
		enableFeatures(featureBufferResponse)
		return next(6)
	case "trailers-unbuffered":
		// trailers without buffer_response: handle_response runs on the
		// headers, before any trailer, and may not change them.
		enableFeatures(featureTrailers)
		return next(7)
	}
	return 1
}

func featureResponse(reqCtx, isError uint32) {
	switch reqCtx {
	case 42:
		setHeader(kindResponse, "x-reqctx", strconv.Itoa(int(reqCtx)))
		setHeader(kindResponse, "x-is-error", strconv.Itoa(int(isError)))
		setHeader(kindResponse, "x-status", strconv.Itoa(int(getStatusCode())))
		setHeader(kindResponse, "x-names", strings.Join(names(kindResponse), ","))
	case 1:
		b := body(1, 5)
		setStatusCode(203)
		setHeader(kindResponse, "x-original-length", strconv.Itoa(len(b)))
		write(kindResponse, strings.ToUpper(b))
	case 2:
		setHeader(kindRequest, "x-late", "1")
	case 3:
		setHeader(kindResponse, "x-late", "1")
	case 6:
		setHeader(kindResponse, "x-trailer-names", strconv.Itoa(len(names(kindResponseTrailers))))
	case 7:
		// Trailers read at the headers would let the response through.
		if len(names(kindResponseTrailers)) == 0 {
			setHeader(kindResponseTrailers, "x-late", "1")
		}
	}
}
