package lua

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// headerMap is the header map a script sees: the request's or the
// response's, with the pseudo-headers (":method", ":path", ":authority",
// ":scheme"; ":status") mapped to the exchange's fields, lower-case
// names, as in Envoy.
type headerMap struct{ h *handle }

func checkHeaders(L *glua.LState) *headerMap {
	hm, ok := L.CheckUserData(1).Value.(*headerMap)
	if !ok {
		L.ArgError(1, "a header map is expected")
	}
	live(L, hm.h)
	return hm
}

func (hm *headerMap) header() http.Header {
	x := hm.h.x
	if hm.h.response {
		if x.Response.Header == nil {
			x.Response.Header = http.Header{}
		}
		return x.Response.Header
	}
	if x.Request.Header == nil {
		x.Request.Header = http.Header{}
	}
	return x.Request.Header
}

// pseudo reads a pseudo-header; ok is false for other names.
func (hm *headerMap) pseudo(name string) (string, bool) {
	x := hm.h.x
	if hm.h.response {
		if name == ":status" {
			return strconv.Itoa(x.Response.Status), true
		}
		return "", false
	}
	switch name {
	case ":method":
		return x.Request.Method, true
	case ":path":
		return x.Request.Path, true
	case ":authority":
		return x.Request.Authority, true
	case ":scheme":
		return x.Request.Scheme, true
	}
	return "", false
}

// setPseudo sets a pseudo-header and reports whether name is one.
func (hm *headerMap) setPseudo(L *glua.LState, name, v string) bool {
	x := hm.h.x
	if hm.h.response {
		if name != ":status" {
			return false
		}
		s, err := strconv.Atoi(v)
		if err != nil || s < 100 || s > 999 {
			L.RaiseError("%q is not a status code", v)
		}
		x.Response.Status = s
		return true
	}
	switch name {
	case ":method":
		x.Request.Method = v
	case ":path":
		x.Request.Path = v
	case ":authority":
		x.Request.Authority = v
	case ":scheme":
		x.Request.Scheme = v
	default:
		return false
	}
	hm.h.requestChanged = true
	return true
}

func (hm *headerMap) changed() {
	if !hm.h.response {
		hm.h.requestChanged = true
	}
}

// get is get(name): the values of name joined by commas, nil when absent,
// as Envoy's header map get.
func headersGet(L *glua.LState) int {
	hm := checkHeaders(L)
	name := strings.ToLower(L.CheckString(2))
	if v, ok := hm.pseudo(name); ok {
		L.Push(glua.LString(v))
		return 1
	}
	vs := hm.header().Values(name)
	if len(vs) == 0 {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(glua.LString(strings.Join(vs, ",")))
	return 1
}

// getAtIndex is getAtIndex(name, index), zero-based; nil past the end.
func headersGetAtIndex(L *glua.LState) int {
	hm := checkHeaders(L)
	name := strings.ToLower(L.CheckString(2))
	i := L.CheckInt(3)
	if v, ok := hm.pseudo(name); ok && i == 0 {
		L.Push(glua.LString(v))
		return 1
	}
	vs := hm.header().Values(name)
	if i < 0 || i >= len(vs) {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(glua.LString(vs[i]))
	return 1
}

func headersGetNumValues(L *glua.LState) int {
	hm := checkHeaders(L)
	name := strings.ToLower(L.CheckString(2))
	if _, ok := hm.pseudo(name); ok {
		L.Push(glua.LNumber(1))
		return 1
	}
	L.Push(glua.LNumber(len(hm.header().Values(name))))
	return 1
}

func headersAdd(L *glua.LState) int {
	hm := checkHeaders(L)
	name, v := strings.ToLower(L.CheckString(2)), L.CheckString(3)
	if !hm.setPseudo(L, name, v) {
		hm.header().Add(name, v)
		hm.changed()
	}
	return 0
}

func headersReplace(L *glua.LState) int {
	hm := checkHeaders(L)
	name, v := strings.ToLower(L.CheckString(2)), L.CheckString(3)
	if !hm.setPseudo(L, name, v) {
		hm.header().Set(name, v)
		hm.changed()
	}
	return 0
}

func headersRemove(L *glua.LState) int {
	hm := checkHeaders(L)
	name := strings.ToLower(L.CheckString(2))
	if _, ok := hm.pseudo(name); ok {
		L.RaiseError("%s cannot be removed", name)
	}
	hm.header().Del(name)
	hm.changed()
	return 0
}

// pairs iterates the map as Envoy does: pseudo-headers first, then each
// value of each header under its lower-case name.
func (hm *headerMap) pairs(L *glua.LState) int {
	live(L, hm.h)
	type kv struct{ k, v string }
	var all []kv
	names := []string{":authority", ":method", ":path", ":scheme"}
	if hm.h.response {
		names = []string{":status"}
	}
	for _, n := range names {
		if v, _ := hm.pseudo(n); v != "" {
			all = append(all, kv{n, v})
		}
	}
	h := hm.header()
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			all = append(all, kv{strings.ToLower(k), v})
		}
	}
	i := 0
	L.Push(L.NewFunction(func(L *glua.LState) int {
		if i >= len(all) {
			L.Push(glua.LNil)
			return 1
		}
		e := all[i]
		i++
		L.Push(glua.LString(e.k))
		L.Push(glua.LString(e.v))
		return 2
	}))
	L.Push(glua.LNil)
	L.Push(glua.LNil)
	return 3
}

func sslPresented(L *glua.LState) int {
	st := checkInfo(L).x.Downstream.TLS
	L.Push(glua.LBool(st != nil && len(st.PeerCertificates) > 0))
	return 1
}

func sslURISANs(L *glua.LState) int {
	t := L.NewTable()
	if st := checkInfo(L).x.Downstream.TLS; st != nil && len(st.PeerCertificates) > 0 {
		for _, u := range st.PeerCertificates[0].URIs {
			t.Append(glua.LString(u.String()))
		}
	}
	L.Push(t)
	return 1
}

func sslDNSSANs(L *glua.LState) int {
	t := L.NewTable()
	if st := checkInfo(L).x.Downstream.TLS; st != nil && len(st.PeerCertificates) > 0 {
		for _, d := range st.PeerCertificates[0].DNSNames {
			t.Append(glua.LString(d))
		}
	}
	L.Push(t)
	return 1
}

func sslSubject(L *glua.LState) int {
	s := ""
	if st := checkInfo(L).x.Downstream.TLS; st != nil && len(st.PeerCertificates) > 0 {
		s = st.PeerCertificates[0].Subject.String()
	}
	L.Push(glua.LString(s))
	return 1
}

func sslDigest(L *glua.LState) int {
	s := ""
	if st := checkInfo(L).x.Downstream.TLS; st != nil && len(st.PeerCertificates) > 0 {
		sum := sha256.Sum256(st.PeerCertificates[0].Raw)
		s = hex.EncodeToString(sum[:])
	}
	L.Push(glua.LString(s))
	return 1
}

// slogLevel maps Envoy's log levels (as offsets from info) onto slog's.
func slogLevel(offset int) slog.Level { return slog.Level(offset) }

// toLua converts a Go value of dynamic or static metadata to Lua.
func toLua(L *glua.LState, v any) glua.LValue {
	switch t := v.(type) {
	case nil:
		return glua.LNil
	case string:
		return glua.LString(t)
	case bool:
		return glua.LBool(t)
	case float64:
		return glua.LNumber(t)
	case int:
		return glua.LNumber(t)
	case int64:
		return glua.LNumber(t)
	case []any:
		tbl := L.NewTable()
		for _, e := range t {
			tbl.Append(toLua(L, e))
		}
		return tbl
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range t {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	}
	return glua.LString(fmt.Sprint(v))
}

// maxMetadataDepth bounds the nesting of a table stored as metadata.
const maxMetadataDepth = 32

// fromLua converts a Lua value to what dynamic metadata holds. A table
// that contains itself, or one nested too deep, is an error rather than
// a descent without end.
func fromLua(v glua.LValue, seen map[*glua.LTable]bool, depth int) (any, error) {
	switch t := v.(type) {
	case glua.LString:
		return string(t), nil
	case glua.LNumber:
		return float64(t), nil
	case glua.LBool:
		return bool(t), nil
	case *glua.LTable:
		if seen[t] {
			return nil, errors.New("a table that contains itself")
		}
		if depth >= maxMetadataDepth {
			return nil, errors.New("tables nested too deep")
		}
		seen[t] = true
		defer delete(seen, t)
		var err error
		if t.MaxN() > 0 {
			var out []any
			t.ForEach(func(_, e glua.LValue) {
				if err == nil {
					var x any
					x, err = fromLua(e, seen, depth+1)
					out = append(out, x)
				}
			})
			return out, err
		}
		out := map[string]any{}
		t.ForEach(func(k, e glua.LValue) {
			if err == nil {
				out[k.String()], err = fromLua(e, seen, depth+1)
			}
		})
		return out, err
	}
	return nil, nil
}
