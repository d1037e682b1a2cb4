package lua

import (
	"context"
	"errors"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/waygate/waygate/filters"
)

// scriptTimeout bounds each stretch of a script's run, its top level
// included: a script that loops forever fails its request, never the
// gateway. Waiting for a body is not counted.
var scriptTimeout = 10 * time.Second

// filter runs one stream's script.
type filter struct {
	f *Factory
	// s is the script of the stream's route, picked with the request
	// headers; nil when the filter takes no part.
	s *script
	// responded is set once the script answered locally; its response
	// script does not run for its own reply.
	responded bool
	// run is an entry point suspended in body(), waiting for the body's
	// end; nil otherwise.
	run *suspended
}

// suspended is an entry point's coroutine waiting for the body.
type suspended struct {
	L, co *glua.LState
	h     *handle
}

// OnRequestHeaders picks the route's script and runs envoy_on_request.
func (fl *filter) OnRequestHeaders(x *filters.Exchange, end bool) filters.Status {
	if fl.s = fl.f.scriptFor(x); fl.s == nil {
		return filters.Continue
	}
	return fl.start(x, "envoy_on_request", false, end)
}

// OnRequestBody hands a waiting envoy_on_request the whole body.
func (fl *filter) OnRequestBody(x *filters.Exchange, body *filters.Buffer, end bool) filters.Status {
	return fl.body(x, body, end, false)
}

// OnResponseHeaders runs envoy_on_response.
func (fl *filter) OnResponseHeaders(x *filters.Exchange, end bool) filters.Status {
	if fl.s == nil || fl.responded {
		return filters.Continue
	}
	return fl.start(x, "envoy_on_response", true, end)
}

// OnResponseBody hands a waiting envoy_on_response the whole body.
func (fl *filter) OnResponseBody(x *filters.Exchange, body *filters.Buffer, end bool) filters.Status {
	return fl.body(x, body, end, true)
}

// OnDone drops a script still waiting for a body that never came.
func (fl *filter) OnDone(*filters.Exchange) {
	if r := fl.run; r != nil {
		fl.run = nil
		r.h.dead = true
		r.L.Close()
	}
}

// start runs entry as a coroutine with a handle on the stream. end says
// the headers end the stream (there is no body to wait for).
func (fl *filter) start(x *filters.Exchange, entry string, response, end bool) filters.Status {
	L, err := fl.s.get()
	if err != nil {
		logError(x, "lua: the script failed to load", fl.s.name, err)
		return filters.Continue
	}
	fn, ok := L.GetGlobal(entry).(*glua.LFunction)
	if !ok {
		fl.s.put(L)
		return filters.Continue
	}
	co, _ := L.NewThread()
	h := &handle{f: fl.f, x: x, response: response, noBody: end}
	return fl.resume(x, &suspended{L: L, co: co, h: h}, fn, h.userdata(co))
}

// body buffers the body for a script waiting in body(), and resumes it
// with the whole body at the end.
func (fl *filter) body(x *filters.Exchange, body *filters.Buffer, end bool, response bool) filters.Status {
	r := fl.run
	if r == nil || r.h.response != response {
		return filters.Continue
	}
	if !end {
		return filters.StopAndBuffer
	}
	fl.run = nil
	r.h.bodyBuf = body
	return fl.resume(x, r, nil, newObject(r.co, &bodyObject{h: r.h, b: body}, bodyType))
}

// resume runs the coroutine (from fn on the first run) until it ends or
// waits for the body. An error is logged and the stream goes on, as in
// Envoy; a local reply stops it. The handle dies when the script ends,
// so a script that kept it cannot reach another stream.
func (fl *filter) resume(x *filters.Exchange, r *suspended, fn *glua.LFunction, args ...glua.LValue) filters.Status {
	parent := x.Context
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, scriptTimeout)
	r.co.SetContext(ctx)
	r.h.waiting = false
	st, err, _ := r.L.Resume(r.co, fn, args...)
	r.co.RemoveContext()
	cancel()
	h := r.h
	if st == glua.ResumeYield && h.waiting && !h.responded {
		// In body(): the chain buffers the body and hands it over at
		// its end; the headers wait with it.
		fl.run = r
		return filters.StopAndBuffer
	}
	h.dead = true
	if h.requestChanged {
		// Routing sees the headers the script set, even if it failed
		// after setting them.
		x.ClearRouteCache()
	}
	switch {
	case h.responded:
		// respond() ends the script with an error of its own.
		fl.s.put(r.L)
		fl.responded = true
		return filters.Stop
	case err != nil:
		// A state an error left mid-call is not reused.
		r.L.Close()
		logError(x, "lua: script error", fl.s.name, err)
		return filters.Continue
	case st == glua.ResumeYield:
		r.L.Close()
		logError(x, "lua: script error", fl.s.name, errors.New("the script yielded outside body()"))
		return filters.Continue
	}
	fl.s.put(r.L)
	return filters.Continue
}

func logError(x *filters.Exchange, msg, script string, err error) {
	if x.Log != nil {
		x.Log.Error(msg, "script", script, "error", scriptError(err))
	}
}

// scriptError is the message of a script error without the Lua stack.
func scriptError(err error) string {
	var le *glua.ApiError
	if errors.As(err, &le) && le.Object != nil {
		return le.Object.String()
	}
	return err.Error()
}

// get returns a state that has run the script, so that its functions
// and globals are defined; a new state runs the top level within
// scriptTimeout.
func (s *script) get() (*glua.LState, error) {
	select {
	case L := <-s.states:
		return L, nil
	default:
	}
	L := glua.NewState()
	registerTypes(L)
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	L.SetContext(ctx)
	L.Push(L.NewFunctionFromProto(s.proto))
	err := L.PCall(0, 0, nil)
	L.RemoveContext()
	if err != nil {
		L.Close()
		return nil, err
	}
	return L, nil
}

// put keeps an idle state for the next call, up to maxIdleStates.
func (s *script) put(L *glua.LState) {
	select {
	case s.states <- L:
	default:
		L.Close()
	}
}
