package main

import (
	"fmt"
	"strings"
)

// The trailer cases of the tck mode, named as the TCK names its header
// cases: <function>/request_trailers[/<which>] and
// <function>/response_trailers[/<which>]. Request trailers are handled
// in handle_request; response trailers in handle_response, where
// buffer_response (enabled at start) has them in place.

// tckPending maps the reqCtx handed to handle_response to its case.
var (
	tckPending = map[uint32]string{}
	tckNextCtx uint32
)

func tckTrailers(fn, arg string) uint64 {
	kind, which, _ := strings.Cut(arg, "/")
	if kind == "response_trailers" {
		if which == "before_next" {
			setHeader(kindResponseTrailers, "new-trailer", "value")
		}
		tckNextCtx++
		tckPending[tckNextCtx] = fn + "/" + which
		return next(tckNextCtx)
	}
	switch fn {
	case "get_header_names":
		have := names(kindRequestTrailers)
		for _, n := range []string{"a-trailer", "b-trailer"} {
			if !contains(have, n) {
				fail(fmt.Sprintf("get_header_names: want %s in %v", n, have))
			}
		}
	case "get_header_values":
		expect("get_header_values", "value", strings.Join(values(kindRequestTrailers, "Single-Trailer"), ","))
	case "read_body":
		// The trailers first: the host reads the body to get them, and
		// the guest still reads all of it, as does the next handler.
		expect("get_header_values", "value", strings.Join(values(kindRequestTrailers, "single-trailer"), ","))
		expect("read_body", "aaaaa", body(kindRequest, 4096))
	default:
		tckChange(fn, kindRequestTrailers, which)
	}
	return 1
}

func tckChange(fn string, kind uint32, which string) {
	name := which + "-trailer"
	switch fn {
	case "set_header_value":
		setHeader(kind, name, "value")
	case "add_header_value":
		addHeader(kind, name, "value")
	case "remove_header":
		delHeader(kind, name)
	default:
		fail("unknown trailer case " + fn)
	}
}

// tckResponse runs the response trailer case of reqCtx.
func tckResponse(reqCtx, isError uint32) {
	c, ok := tckPending[reqCtx]
	delete(tckPending, reqCtx)
	if !ok || isError != 0 {
		return
	}
	fn, which, _ := strings.Cut(c, "/")
	switch fn {
	case "get_header_names":
		have := names(kindResponseTrailers)
		for _, n := range []string{"existing-trailer", "grpc-status"} {
			if !contains(have, n) {
				fail(fmt.Sprintf("get_header_names: want %s in %v", n, have))
			}
		}
	case "get_header_values":
		expect("get_header_values", "bear", strings.Join(values(kindResponseTrailers, "Existing-Trailer"), ","))
	case "set_header_value":
		if which != "before_next" {
			tckChange(fn, kindResponseTrailers, which)
		}
	default:
		tckChange(fn, kindResponseTrailers, which)
	}
}
