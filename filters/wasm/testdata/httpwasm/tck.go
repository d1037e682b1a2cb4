package main

import (
	"fmt"
	"strings"
)

// tck runs the case the x-httpwasm-tck-testid header names, as the
// http-wasm TCK's guest does: a failed assertion answers 500 with the
// reason in x-httpwasm-tck-failed; every handled request carries
// x-httpwasm-tck-handled: 1.
func tck() uint64 {
	id := header(kindRequest, "x-httpwasm-tck-testid")
	if id == "" {
		setStatusCode(500)
		write(kindResponse, "missing x-httpwasm-tck-testid header")
		return 0
	}
	defer setHeader(kindResponse, "x-httpwasm-tck-handled", "1")
	fn, arg, _ := strings.Cut(id, "/")
	if strings.HasSuffix(strings.SplitN(arg, "/", 2)[0], "_trailers") {
		return tckTrailers(fn, arg)
	}
	switch fn {
	case "get_protocol_version":
		write(kindResponse, proto())
	case "get_method":
		expect("get_method", arg, method())
	case "set_method":
		p, n := sp("POST")
		setMethod(p, n)
	case "get_uri":
		expect("get_uri", tckURIs[arg], uri())
	case "set_uri":
		p, n := sp(tckURIs[arg])
		setURI(p, n)
	case "get_header_values":
		want := map[string][]string{
			"request/lowercase-key":   {"single-header", "value"},
			"request/mixedcase-key":   {"Single-Header", "value"},
			"request/not-exists":      {"not-header"},
			"request/multiple-values": {"multi-header", "value1", "value2"},
		}[arg]
		if want == nil {
			return failed("unknown case " + id)
		}
		expect("get_header_values", strings.Join(want[1:], ","), strings.Join(values(kindRequest, want[0]), ","))
	case "get_header_names":
		have := names(kindRequest)
		for _, n := range []string{"a-header", "b-header"} {
			if !contains(have, n) {
				fail(fmt.Sprintf("get_header_names: want %s in %v", n, have))
			}
		}
	case "set_header_value":
		setHeader(kindRequest, strings.TrimPrefix(arg, "request/")+"-header", "value")
	case "add_header_value":
		addHeader(kindRequest, strings.TrimPrefix(arg, "request/")+"-header", "value")
	case "remove_header":
		delHeader(kindRequest, strings.TrimPrefix(arg, "request/")+"-header")
	case "read_body":
		size := map[string]int{"request/empty": 0, "request/small": 5, "request/medium": 2048, "request/large": 4096, "request/xlarge": 5000}[arg]
		expect("read_body", strings.Repeat("a", size), body(kindRequest, 4096))
	case "get_source_addr":
		addr := srcAddr()
		host, port, ok := strings.Cut(addr, ":")
		if !ok || host != "127.0.0.1" || len(port) == 0 || len(port) > 5 {
			fail("get_source_addr: have " + addr)
		}
	default:
		return failed("unknown x-httpwasm-tck-testid " + id)
	}
	return 1
}

var tckURIs = map[string]string{
	"simple":          "/simple",
	"simple/escaping": "/simple%26clean",
	"query":           "/animal?name=panda",
	"query/escaping":  "/disney?name=chip%26dale",
}

func expect(what, want, have string) {
	if want != have {
		fail(fmt.Sprintf("%s: want %q, have %q", what, want, have))
	}
}

func fail(msg string) {
	setStatusCode(500)
	setHeader(kindResponse, "x-httpwasm-tck-failed", msg)
}

func failed(msg string) uint64 {
	fail(msg)
	return 0
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
