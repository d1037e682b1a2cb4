package wasm

import (
	"iter"
	"maps"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/waygate/waygate/filters"
)

// fieldMap is one of a stream's header maps as the guest sees it:
// lower-case names, with the pseudo-headers (:method, :path,
// :authority, :scheme for a request, :status for a response) mapped to
// the exchange's fields.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#http-fields
type fieldMap struct {
	h        *http.Header
	req      *filters.Request  // request headers: the pseudo-headers
	resp     *filters.Response // response headers: :status
	status   int               // an http call's :status
	x        *filters.Exchange // set for request headers: changes clear the route cache
	readOnly bool
}

// fields returns map t of the effective context, or ok=false when it
// is not available now.
func (v *vm) fields(t uint32) (fieldMap, status) {
	switch t {
	case mapHTTPCallHeaders, mapHTTPCallTrailers:
		if v.callResp == nil {
			return fieldMap{}, statusNotFound
		}
		if t == mapHTTPCallTrailers {
			return fieldMap{h: &v.callResp.trailer, readOnly: true}, statusOK
		}
		return fieldMap{h: &v.callResp.header, status: v.callResp.status, readOnly: true}, statusOK
	case mapRequestHeaders, mapRequestTrailers, mapResponseHeaders, mapResponseTrailers:
	case mapGRPCInitialMetadata, mapGRPCTrailingMetadata:
		return fieldMap{}, statusNotFound
	default:
		return fieldMap{}, statusBadArgument
	}
	s := v.stream()
	if s == nil {
		return fieldMap{}, statusNotFound
	}
	x := s.x
	switch t {
	case mapRequestHeaders:
		return fieldMap{h: &x.Request.Header, req: &x.Request, x: x}, statusOK
	case mapRequestTrailers:
		return fieldMap{h: &x.Request.Trailer}, statusOK
	case mapResponseHeaders:
		return fieldMap{h: &x.Response.Header, resp: &x.Response}, statusOK
	}
	return fieldMap{h: &x.Response.Trailer}, statusOK
}

// all lists the fields, pseudo-headers first as HTTP/2 orders them.
func (f fieldMap) all() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		switch {
		case f.req != nil:
			r := f.req
			if !yield(":authority", r.Authority) || !yield(":path", r.Path) || !yield(":method", r.Method) || !yield(":scheme", r.Scheme) {
				return
			}
		case f.resp != nil:
			if !yield(":status", strconv.Itoa(f.resp.Status)) {
				return
			}
		case f.status != 0:
			if !yield(":status", strconv.Itoa(f.status)) {
				return
			}
		}
		for k, vs := range *f.h {
			for _, v := range vs {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// first returns a field's first value, as Envoy's
// proxy_get_header_map_value does.
func (f fieldMap) first(name string) (string, bool) {
	if _, ok := f.pseudo(name); ok || name == ":status" {
		return f.get(name)
	}
	vs := (*f.h)[textproto.CanonicalMIMEHeaderKey(name)]
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// get returns a field's value, several values joined with "," as the
// request.headers attribute has them.
func (f fieldMap) get(name string) (string, bool) {
	if p, ok := f.pseudo(name); ok {
		return *p, true
	}
	if name == ":status" {
		switch {
		case f.resp != nil:
			return strconv.Itoa(f.resp.Status), true
		case f.status != 0:
			return strconv.Itoa(f.status), true
		}
	}
	vs := (*f.h)[textproto.CanonicalMIMEHeaderKey(name)]
	if len(vs) == 0 {
		return "", false
	}
	if len(vs) == 1 {
		return vs[0], true
	}
	return strings.Join(vs, ","), true
}

// pseudo is the request field a pseudo-header (or host) stands for.
func (f fieldMap) pseudo(name string) (*string, bool) {
	if f.req == nil {
		return nil, false
	}
	switch name {
	case ":authority", "host":
		return &f.req.Authority, true
	case ":path":
		return &f.req.Path, true
	case ":method":
		return &f.req.Method, true
	case ":scheme":
		return &f.req.Scheme, true
	}
	return nil, false
}

func (f fieldMap) changed() {
	if f.x != nil {
		f.x.ClearRouteCache()
	}
}

func (f fieldMap) header() http.Header {
	if *f.h == nil {
		*f.h = http.Header{}
	}
	return *f.h
}

// set adds (or, with replace, replaces) a field.
func (f fieldMap) set(name, value string, replace bool) status {
	if f.readOnly {
		return statusBadArgument
	}
	defer f.changed()
	if p, ok := f.pseudo(name); ok {
		*p = value
		return statusOK
	}
	if name == ":status" && f.resp != nil {
		code, err := strconv.Atoi(value)
		if err != nil || code < 100 || code > 999 {
			return statusBadArgument
		}
		f.resp.Status = code
		return statusOK
	}
	if strings.HasPrefix(name, ":") {
		return statusOK
	}
	k := textproto.CanonicalMIMEHeaderKey(name)
	h := f.header()
	if replace {
		h[k] = []string{value}
	} else {
		h[k] = append(h[k], value)
	}
	return statusOK
}

func (f fieldMap) remove(name string) status {
	if f.readOnly {
		return statusBadArgument
	}
	defer f.changed()
	if p, ok := f.pseudo(name); ok {
		*p = ""
		return statusOK
	}
	if *f.h != nil {
		delete(*f.h, textproto.CanonicalMIMEHeaderKey(name))
	}
	return statusOK
}

// replaceAll sets the map to the serialized pairs.
func (f fieldMap) replaceAll(b []byte) status {
	if f.readOnly {
		return statusBadArgument
	}
	// Emptied in place, not swapped for a new map: the response's map
	// is the ResponseWriter's own, which the connection manager writes.
	h := f.header()
	saved := h.Clone()
	clear(h)
	err := decodeMap(b, func(k, v []byte) {
		f.set(string(k), string(v), false)
	})
	if err != nil {
		clear(h)
		maps.Copy(h, saved)
		return statusBadArgument
	}
	f.changed()
	return statusOK
}
