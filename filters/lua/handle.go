package lua

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/xdsmeta"
)

// handle is the stream handle a script's entry point gets.
type handle struct {
	f        *Factory
	x        *filters.Exchange
	response bool // the response phase: headers() are the response's
	// responded is set by respond(); requestChanged when the script
	// changed the request headers, which routing then sees.
	responded      bool
	requestChanged bool
	// dead is set when the call it was made for returns, or once the
	// script responded: every method then raises an error, as Envoy's
	// "object used outside of proper scope".
	dead bool
	// noBody says the headers ended the stream; waiting that the script
	// waits in body(); bodyBuf is the whole body once it is in.
	noBody, waiting bool
	bodyBuf         *filters.Buffer
}

// bodyObject is the buffer body() returns.
type bodyObject struct {
	h *handle
	b *filters.Buffer
}

// The metatable names of the objects scripts see.
const (
	handleType     = "waygate.lua.handle"
	headersType    = "waygate.lua.headers"
	streamInfoType = "waygate.lua.streaminfo"
	dynMetaType    = "waygate.lua.dynamicmetadata"
	metadataType   = "waygate.lua.metadata"
	connectionType = "waygate.lua.connection"
	sslType        = "waygate.lua.ssl"
	bodyType       = "waygate.lua.body"
)

// errResponded is the error respond() ends the script with.
const errResponded = "waygate.lua: responded"

// registerTypes defines the objects' methods in a new state, and wraps
// pairs so that it iterates a header map (gopher-lua has no __pairs).
func registerTypes(L *glua.LState) {
	methods := func(name string, fns map[string]glua.LGFunction) {
		mt := L.NewTypeMetatable(name)
		L.SetField(mt, "__index", L.SetFuncs(L.NewTable(), fns))
	}
	methods(handleType, map[string]glua.LGFunction{
		"headers":         handleHeaders,
		"respond":         handleRespond,
		"logTrace":        logAt(-8),
		"logDebug":        logAt(-4),
		"logInfo":         logAt(0),
		"logWarn":         logAt(4),
		"logErr":          logAt(8),
		"logCritical":     logAt(12),
		"streamInfo":      handleStreamInfo,
		"metadata":        handleMetadata,
		"connection":      handleConnection,
		"httpCall":        handleHTTPCall,
		"base64Escape":    handleBase64,
		"timestamp":       handleTimestamp,
		"body":            handleBody,
		"bodyChunks":      unsupported("bodyChunks()"),
		"trailers":        unsupported("trailers()"),
		"importPublicKey": unsupported("importPublicKey()"),
		"verifySignature": unsupported("verifySignature()"),
	})
	methods(headersType, map[string]glua.LGFunction{
		"get":                  headersGet,
		"getAtIndex":           headersGetAtIndex,
		"getNumValues":         headersGetNumValues,
		"add":                  headersAdd,
		"replace":              headersReplace,
		"remove":               headersRemove,
		"setHttp1ReasonPhrase": func(*glua.LState) int { return 0 },
	})
	methods(streamInfoType, map[string]glua.LGFunction{
		"protocol":                      infoProtocol,
		"downstreamLocalAddress":        infoAddr(func(c filters.Connection) string { return c.LocalAddr.String() }),
		"downstreamRemoteAddress":       infoAddr(func(c filters.Connection) string { return c.RemoteAddr.String() }),
		"downstreamDirectRemoteAddress": infoAddr(directRemote),
		"requestedServerName":           infoAddr(func(c filters.Connection) string { return c.RequestedServerName }),
		"routeName":                     infoRouteName,
		"dynamicMetadata":               infoDynamicMetadata,
	})
	methods(dynMetaType, map[string]glua.LGFunction{"get": dynMetaGet, "set": dynMetaSet})
	methods(bodyType, map[string]glua.LGFunction{"length": bodyLength, "getBytes": bodyGetBytes, "setBytes": bodySetBytes})
	methods(metadataType, map[string]glua.LGFunction{"get": metadataGet})
	methods(connectionType, map[string]glua.LGFunction{"ssl": connectionSSL})
	methods(sslType, map[string]glua.LGFunction{
		"peerCertificatePresented":    sslPresented,
		"uriSanPeerCertificate":       sslURISANs,
		"dnsSansPeerCertificate":      sslDNSSANs,
		"subjectPeerCertificate":      sslSubject,
		"sha256PeerCertificateDigest": sslDigest,
	})
	pairs := L.GetGlobal("pairs")
	L.SetGlobal("pairs", L.NewFunction(func(L *glua.LState) int {
		if ud, ok := L.Get(1).(*glua.LUserData); ok {
			if hm, ok := ud.Value.(*headerMap); ok {
				return hm.pairs(L)
			}
		}
		L.Insert(pairs, 1)
		L.Call(L.GetTop()-1, glua.MultRet)
		return L.GetTop()
	}))
}

func (h *handle) userdata(L *glua.LState) *glua.LUserData {
	return newObject(L, h, handleType)
}

func newObject(L *glua.LState, v any, typ string) *glua.LUserData {
	ud := L.NewUserData()
	ud.Value = v
	L.SetMetatable(ud, L.GetTypeMetatable(typ))
	return ud
}

func checkHandle(L *glua.LState) *handle {
	h, ok := L.CheckUserData(1).Value.(*handle)
	if !ok {
		L.ArgError(1, "a stream handle is expected")
	}
	return live(L, h)
}

// live raises the error of a handle used after its call, or after the
// script responded.
func live(L *glua.LState, h *handle) *handle {
	if h.dead {
		L.RaiseError("object used outside of proper scope")
	}
	return h
}

func unsupported(name string) glua.LGFunction {
	return func(L *glua.LState) int {
		L.RaiseError("%s is not supported by Waygate's Lua filter", name)
		return 0
	}
}

func handleHeaders(L *glua.LState) int {
	h := checkHandle(L)
	L.Push(newObject(L, &headerMap{h: h}, headersType))
	return 1
}

// handleRespond is respond(headers, body): a local reply whose status
// is the headers' ":status". It ends the script.
func handleRespond(L *glua.LState) int {
	h := checkHandle(L)
	if h.response {
		L.RaiseError("respond() is not supported in the response path")
	}
	tbl := L.CheckTable(2)
	body := L.OptString(3, "")
	status := 0
	hdr := http.Header{}
	tbl.ForEach(func(k, v glua.LValue) {
		name := strings.ToLower(k.String())
		if name == ":status" {
			status, _ = strconv.Atoi(v.String())
			return
		}
		if t, ok := v.(*glua.LTable); ok {
			t.ForEach(func(_, e glua.LValue) { hdr.Add(name, e.String()) })
			return
		}
		hdr.Add(name, v.String())
	})
	if status < 200 || status > 599 {
		L.RaiseError("respond(): :status must be a status code, got %q", tbl.RawGetString(":status").String())
	}
	h.x.SendLocalReply(filters.LocalReply{Status: status, Header: hdr, Body: body, Details: "lua_response"})
	// The script ends here; should it catch the error (pcall), the
	// handle is dead for the rest of it.
	h.responded, h.dead = true, true
	L.RaiseError(errResponded)
	return 0
}

// logAt logs at a slog level offset (Envoy's trace to critical).
func logAt(level int) glua.LGFunction {
	return func(L *glua.LState) int {
		h := checkHandle(L)
		if h.x.Log != nil {
			h.x.Log.Log(context.Background(), slogLevel(level), L.CheckString(2), "filter", "lua")
		}
		return 0
	}
}

func handleBase64(L *glua.LState) int {
	checkHandle(L)
	L.Push(glua.LString(base64.StdEncoding.EncodeToString([]byte(L.CheckString(2)))))
	return 1
}

func handleTimestamp(L *glua.LState) int {
	checkHandle(L)
	L.Push(glua.LNumber(time.Now().UnixMilli()))
	return 1
}

func handleStreamInfo(L *glua.LState) int {
	h := checkHandle(L)
	L.Push(newObject(L, h, streamInfoType))
	return 1
}

func checkInfo(L *glua.LState) *handle {
	h, ok := L.CheckUserData(1).Value.(*handle)
	if !ok {
		L.ArgError(1, "a stream info object is expected")
	}
	return live(L, h)
}

func infoProtocol(L *glua.LState) int {
	L.Push(glua.LString(checkInfo(L).x.Request.Protocol))
	return 1
}

func infoAddr(get func(filters.Connection) string) glua.LGFunction {
	return func(L *glua.LState) int {
		L.Push(glua.LString(get(checkInfo(L).x.Downstream)))
		return 1
	}
}

func directRemote(c filters.Connection) string {
	if c.DirectRemoteAddr.IsValid() {
		return c.DirectRemoteAddr.String()
	}
	return c.RemoteAddr.String()
}

func infoRouteName(L *glua.LState) int {
	if r := checkInfo(L).x.MatchedRoute(); r != nil {
		L.Push(glua.LString(r.Name()))
		return 1
	}
	L.Push(glua.LString(""))
	return 1
}

func infoDynamicMetadata(L *glua.LState) int {
	L.Push(newObject(L, checkInfo(L), dynMetaType))
	return 1
}

// dynMetaGet is dynamicMetadata():get(namespace): the namespace's
// values as a table, nil when it has none.
func dynMetaGet(L *glua.LState) int {
	h := checkInfo(L)
	m := h.x.Metadata[L.CheckString(2)]
	if m == nil {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(toLua(L, m))
	return 1
}

// dynMetaSet is dynamicMetadata():set(namespace, key, value).
func dynMetaSet(L *glua.LState) int {
	h := checkInfo(L)
	v, err := fromLua(L.Get(4), map[*glua.LTable]bool{}, 0)
	if err != nil {
		L.RaiseError("dynamicMetadata():set(): %v", err)
	}
	h.x.SetMetadata(L.CheckString(2), L.CheckString(3), v)
	return 0
}

// handleMetadata is metadata(): the route's filter_metadata under the
// filter's name.
func handleMetadata(L *glua.LState) int {
	h := checkHandle(L)
	L.Push(newObject(L, h, metadataType))
	return 1
}

func metadataGet(L *glua.LState) int {
	h := checkInfo(L)
	md, _ := xdsmeta.Route(h.x)
	s := md.GetFilterMetadata()[FilterName]
	v, ok := s.GetFields()[L.CheckString(2)]
	if !ok {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(toLua(L, v.AsInterface()))
	return 1
}

func handleConnection(L *glua.LState) int {
	h := checkHandle(L)
	L.Push(newObject(L, h, connectionType))
	return 1
}

// connectionSSL is connection():ssl(), nil on plain text.
func connectionSSL(L *glua.LState) int {
	h := checkInfo(L)
	if h.x.Downstream.TLS == nil {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(newObject(L, h, sslType))
	return 1
}

// handleHTTPCall is httpCall(cluster, headers, body, timeout_ms
// [, asynchronous]): a request to a cluster of the gateway, built from
// the headers' ":method", ":path" and ":authority" (all required). It
// returns the response's headers (":status" among them) and body; a call
// that fails returns 503 and "upstream failure", as Envoy's does. An
// asynchronous call returns nothing and is not waited for. The call is
// bounded by timeout_ms (0: none) and by the script's own bound.
func handleHTTPCall(L *glua.LState) int {
	h := checkHandle(L)
	cluster := L.CheckString(2)
	tbl := L.CheckTable(3)
	body := L.OptString(4, "")
	timeout := time.Duration(L.OptInt(5, 0)) * time.Millisecond
	async := L.GetTop() >= 6 && glua.LVAsBool(L.Get(6))
	if h.f.env.Upstream == nil {
		L.RaiseError("httpCall(): no upstream is available")
	}
	var method, path, authority string
	hdr := http.Header{}
	tbl.ForEach(func(k, v glua.LValue) {
		switch name := strings.ToLower(k.String()); name {
		case ":method":
			method = v.String()
		case ":path":
			path = v.String()
		case ":authority":
			authority = v.String()
		default:
			hdr.Add(name, v.String())
		}
	})
	if method == "" || path == "" || authority == "" {
		L.RaiseError("httpCall(): headers must include ':path', ':method', and ':authority'")
	}
	u, err := url.ParseRequestURI(path)
	if err != nil || !strings.HasPrefix(path, "/") {
		L.RaiseError("httpCall(): %q is not a path", path)
	}
	u.Scheme, u.Host = "http", authority
	req := &http.Request{Method: method, URL: u, Host: authority, Header: hdr,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
	call := func(ctx context.Context) (*http.Response, []byte, error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		resp, err := h.f.env.Upstream.RoundTrip(ctx, cluster, req.WithContext(ctx))
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxCallBody+1))
		if err == nil && len(b) > maxCallBody {
			err = errors.New("the response body is over 1 MiB")
		}
		return resp, b, err
	}
	if async {
		go func() { _, _, _ = call(context.Background()) }()
		return 0
	}
	ctx := L.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	out := L.NewTable()
	resp, b, err := call(ctx)
	if err != nil {
		if h.x.Log != nil {
			h.x.Log.Warn("lua: httpCall failed", "cluster", cluster, "error", err.Error())
		}
		out.RawSetString(":status", glua.LString("503"))
		L.Push(out)
		L.Push(glua.LString("upstream failure"))
		return 2
	}
	out.RawSetString(":status", glua.LString(strconv.Itoa(resp.StatusCode)))
	for k, vs := range resp.Header {
		if len(vs) > 0 {
			out.RawSetString(strings.ToLower(k), glua.LString(vs[0]))
		}
	}
	L.Push(out)
	L.Push(glua.LString(bytes.Clone(b)))
	return 2
}

// maxCallBody is the largest response body httpCall hands a script.
const maxCallBody = 1 << 20

// handleBody is body([always_wrap_body]): the whole body of the
// stream's side, waiting (the script yields) until it is all in, as
// Envoy's does. Without a body it is nil, or an empty buffer when asked
// to always wrap.
func handleBody(L *glua.LState) int {
	h := checkHandle(L)
	wrap := L.OptBool(2, false)
	switch {
	case h.bodyBuf != nil:
		L.Push(newObject(L, &bodyObject{h: h, b: h.bodyBuf}, bodyType))
	case h.noBody && wrap:
		L.Push(newObject(L, &bodyObject{h: h, b: filters.NewBuffer(nil)}, bodyType))
	case h.noBody:
		L.Push(glua.LNil)
	default:
		h.waiting = true
		return L.Yield()
	}
	return 1
}

func checkBody(L *glua.LState) *bodyObject {
	b, ok := L.CheckUserData(1).Value.(*bodyObject)
	if !ok {
		L.ArgError(1, "a body is expected")
	}
	live(L, b.h)
	return b
}

func bodyLength(L *glua.LState) int {
	L.Push(glua.LNumber(checkBody(L).b.Len()))
	return 1
}

// bodyGetBytes is getBytes(index, length), zero-based, clipped to the
// body.
func bodyGetBytes(L *glua.LState) int {
	b := checkBody(L).b.Bytes()
	i, n := L.CheckInt(2), L.CheckInt(3)
	if i < 0 || n < 0 || i > len(b) {
		L.RaiseError("getBytes(): index %d, length %d out of a body of %d bytes", i, n, len(b))
	}
	L.Push(glua.LString(b[i:min(i+n, len(b))]))
	return 1
}

// bodySetBytes is setBytes(string): the body becomes it, its length with
// it.
func bodySetBytes(L *glua.LState) int {
	b := checkBody(L)
	s := L.CheckString(2)
	b.b.Set([]byte(s))
	h := b.h.x.Request.Header
	if b.h.response {
		h = b.h.x.Response.Header
	}
	if h != nil && h.Get("Content-Length") != "" {
		h.Set("Content-Length", strconv.Itoa(len(s)))
	}
	L.Push(glua.LNumber(len(s)))
	return 1
}
