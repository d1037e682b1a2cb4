package lua

import (
	"context"
	"errors"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/waygate/waygate/filters"
)

// scriptTimeout bounds one call into a script, its top level included:
// a script that loops forever fails its request, never the gateway.
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
}

// OnRequestHeaders picks the route's script and runs envoy_on_request.
func (fl *filter) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	if fl.s = fl.f.scriptFor(x); fl.s == nil {
		return filters.Continue
	}
	return fl.run(x, "envoy_on_request", false)
}

// OnResponseHeaders runs envoy_on_response.
func (fl *filter) OnResponseHeaders(x *filters.Exchange, _ bool) filters.Status {
	if fl.s == nil || fl.responded {
		return filters.Continue
	}
	return fl.run(x, "envoy_on_response", true)
}

// run calls entry with a handle on the stream. An error is logged and the
// stream goes on, as in Envoy; a local reply stops it. The handle dies
// when the call returns, so a script that kept it cannot reach another
// stream.
func (fl *filter) run(x *filters.Exchange, entry string, response bool) filters.Status {
	L, err := fl.s.get()
	if err != nil {
		logError(x, "lua: the script failed to load", fl.s.name, err)
		return filters.Continue
	}
	fn := L.GetGlobal(entry)
	if fn.Type() != glua.LTFunction {
		fl.s.put(L)
		return filters.Continue
	}
	parent := x.Context
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, scriptTimeout)
	defer cancel()
	L.SetContext(ctx)
	h := &handle{f: fl.f, x: x, response: response}
	err = L.CallByParam(glua.P{Fn: fn, NRet: 0, Protect: true}, h.userdata(L))
	h.dead = true
	L.RemoveContext()
	L.SetTop(0)
	if h.requestChanged {
		// Routing sees the headers the script set, even if it failed
		// after setting them.
		x.ClearRouteCache()
	}
	switch {
	case h.responded:
		// respond() ends the script with an error of its own.
		fl.s.put(L)
		fl.responded = true
		return filters.Stop
	case err != nil:
		// A state an error left mid-call is not reused.
		L.Close()
		logError(x, "lua: script error", fl.s.name, err)
		return filters.Continue
	}
	fl.s.put(L)
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
