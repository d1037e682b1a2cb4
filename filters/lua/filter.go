package lua

import (
	"context"
	"errors"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/waygate/waygate/filters"
)

// scriptTimeout bounds one call into a script: a script that loops
// forever fails its request, never the gateway.
var scriptTimeout = 10 * time.Second

// filter runs one stream's script.
type filter struct {
	f *Factory
	s *script
	// responded is set once the script answered locally; its response
	// script does not run for its own reply.
	responded bool
}

// OnRequestHeaders runs envoy_on_request.
func (fl *filter) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	return fl.run(x, "envoy_on_request", false)
}

// OnResponseHeaders runs envoy_on_response.
func (fl *filter) OnResponseHeaders(x *filters.Exchange, _ bool) filters.Status {
	if fl.responded {
		return filters.Continue
	}
	return fl.run(x, "envoy_on_response", true)
}

// run calls entry with a handle on the stream. An error is logged and the
// stream goes on, as in Envoy; a local reply stops it.
func (fl *filter) run(x *filters.Exchange, entry string, response bool) filters.Status {
	L, err := fl.s.get()
	if err != nil {
		x.Log.Error("lua: the script failed to load", "script", fl.s.name, "error", err.Error())
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
	L.RemoveContext()
	L.SetTop(0)
	switch {
	case h.responded:
		// respond() ends the script with an error of its own.
		fl.s.put(L)
		fl.responded = true
		return filters.Stop
	case err != nil:
		// A state an error left mid-call is not reused.
		L.Close()
		x.Log.Error("lua: script error", "script", fl.s.name, "entry", entry, "error", scriptError(err))
		return filters.Continue
	}
	fl.s.put(L)
	if h.requestChanged && !response {
		// Routing sees the headers the script set.
		x.ClearRouteCache()
	}
	return filters.Continue
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
// and globals are defined.
func (s *script) get() (*glua.LState, error) {
	if L, ok := s.states.Get().(*glua.LState); ok {
		return L, nil
	}
	L := glua.NewState()
	registerTypes(L)
	L.Push(L.NewFunctionFromProto(s.proto))
	if err := L.PCall(0, 0, nil); err != nil {
		L.Close()
		return nil, err
	}
	return L, nil
}

func (s *script) put(L *glua.LState) { s.states.Put(L) }
