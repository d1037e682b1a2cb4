package wasm

import (
	"context"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Header kinds.
const (
	hwRequest = iota
	hwResponse
	hwRequestTrailers
	hwResponseTrailers
)

// headers is the header map of kind; the request's Host is in
// Authority, shown to the guest as "host". Trailers are empty for a
// guest that did not enable feature_trailers, as the ABI asks.
func (s *hwStream) headers(kind uint32, create bool) http.Header {
	switch kind {
	case hwRequest:
		return s.x.Request.Header
	case hwResponse:
		return s.responseHeader(create)
	case hwRequestTrailers:
		if s.features&featureTrailers == 0 {
			return nil
		}
		return s.requestTrailer(create)
	case hwResponseTrailers:
		if s.features&featureTrailers == 0 {
			return nil
		}
		return s.responseTrailer(create)
	}
	panic(hwTrap("unknown header kind"))
}

// requestTrailer is the request's trailers. They follow the body, so
// in handle_request the host first reads what is left of it from the
// client (it still goes upstream, after what the guest reads of it).
// The exchange's map is the one the upstream request sends.
func (s *hwStream) requestTrailer(create bool) http.Header {
	if !s.afterNext {
		s.drainRequest()
	}
	if s.x.Request.Trailer == nil && create {
		s.x.Request.Trailer = http.Header{}
	}
	return s.x.Request.Trailer
}

// responseTrailer is the response trailers the guest sets on the
// upstream's before next, the upstream's after: with buffer_response
// handle_response runs once they are in; without, it runs on the
// response headers, before any trailer came.
func (s *hwStream) responseTrailer(create bool) http.Header {
	if !s.afterNext {
		if s.respTrailer == nil && create {
			s.respTrailer = http.Header{}
		}
		return s.respTrailer
	}
	if s.x.Response.Trailer == nil && create {
		s.x.Response.Trailer = http.Header{}
	}
	return s.x.Response.Trailer
}

func hwGetHeaderNames(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "get_header_names")
	kind := uint32(stack[0])
	h := s.headers(kind, false)
	names := make([]string, 0, len(h)+1)
	if kind == hwRequest && s.x.Request.Authority != "" {
		names = append(names, "host")
	}
	for k := range h {
		names = append(names, strings.ToLower(k))
	}
	slices.Sort(names)
	stack[0] = hwWriteList(m, uint32(stack[1]), uint32(stack[2]), names)
}

func hwGetHeaderValues(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "get_header_values")
	kind := uint32(stack[0])
	name := hwName(m, stack[1], stack[2])
	var vals []string
	if kind == hwRequest && name == "Host" {
		if a := s.x.Request.Authority; a != "" {
			vals = []string{a}
		}
	} else {
		vals = s.headers(kind, false)[name]
	}
	stack[0] = hwWriteList(m, uint32(stack[3]), uint32(stack[4]), vals)
}

// hwName reads a header name, in net/http's canonical form.
func hwName(m api.Module, ptr, n uint64) string {
	b := hwRead(m, uint32(ptr), uint32(n), "header name")
	if !validToken(string(b)) {
		panic(hwTrap("invalid header name " + quote(string(b))))
	}
	return canonicalName(b)
}

// canonicalName is textproto.CanonicalMIMEHeaderKey of a valid token,
// copied out of the guest's memory once.
func canonicalName(b []byte) string {
	var buf [64]byte
	if len(b) > len(buf) {
		return textproto.CanonicalMIMEHeaderKey(string(b))
	}
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	return string(buf[:len(b)])
}

// mutableHeaders checks that kind may change now and returns its map:
// request headers and trailers before next only, response headers and
// trailers before next or, with buffer_response, in handle_response.
// Changing trailers without feature_trailers traps, as the ABI asks.
func (s *hwStream) mutableHeaders(kind uint32) http.Header {
	switch kind {
	case hwRequest:
		s.mustBeforeNext("change request headers")
		s.routeMod = true
	case hwResponse:
		s.mustBeforeNextOr(featureBufferResponse, "change response headers")
	case hwRequestTrailers, hwResponseTrailers:
		if s.features&featureTrailers == 0 {
			panic(hwTrap("cannot change trailers without feature_trailers"))
		}
		if kind == hwRequestTrailers {
			s.mustBeforeNext("change request trailers")
		} else {
			s.mustBeforeNextOr(featureBufferResponse, "change response trailers")
		}
	default:
		panic(hwTrap("unknown header kind"))
	}
	return s.headers(kind, true)
}

func hwHeaderArgs(ctx context.Context, m api.Module, stack []uint64, fn string) (*hwStream, http.Header, string, string) {
	_, s := hwStreamOf(ctx, fn)
	h := s.mutableHeaders(uint32(stack[0]))
	name := hwName(m, stack[1], stack[2])
	value := string(hwRead(m, uint32(stack[3]), uint32(stack[4]), "header value"))
	if strings.ContainsAny(value, "\r\n\x00") {
		panic(hwTrap("invalid value for header " + name))
	}
	return s, h, name, value
}

func hwSetHeaderValue(ctx context.Context, m api.Module, stack []uint64) {
	s, h, name, value := hwHeaderArgs(ctx, m, stack, "set_header_value")
	if uint32(stack[0]) == hwRequest && name == "Host" {
		s.x.Request.Authority = value
		return
	}
	h[name] = []string{value}
}

func hwAddHeaderValue(ctx context.Context, m api.Module, stack []uint64) {
	s, h, name, value := hwHeaderArgs(ctx, m, stack, "add_header_value")
	if uint32(stack[0]) == hwRequest && name == "Host" {
		s.x.Request.Authority = value
		return
	}
	h[name] = append(h[name], value)
}

func hwRemoveHeader(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "remove_header")
	h := s.mutableHeaders(uint32(stack[0]))
	name := hwName(m, stack[1], stack[2])
	if uint32(stack[0]) == hwRequest && name == "Host" {
		s.x.Request.Authority = ""
		return
	}
	delete(h, name)
}
