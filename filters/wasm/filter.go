package wasm

import (
	"net/http"
	"sync/atomic"

	"github.com/tetratelabs/wazero/api"

	"github.com/waygate/waygate/filters"
)

// filter is one stream's context in the instance it is pinned to. Its
// fields that callbacks of other goroutines touch (paused, resume,
// reply, reset, vmFailed) are guarded by the instance's mutex.
type filter struct {
	f    *Factory
	vm   *vm // nil when no instance could be started
	id   uint32
	root uint32 // the plugin's root context in vm
	x    *filters.Exchange

	reqBody, respBody *filters.Buffer

	paused   bool
	resume   bool
	reply    *filters.LocalReply
	reset    bool
	vmFailed bool
	wake     chan struct{}

	// held is set while the headers of one side wait on a Pause with
	// the body still to come. As after Envoy's StopIteration, the body
	// meanwhile goes through the plugin's body callbacks (the chain
	// buffers it) and the headers go on with it once the body is all
	// in and the plugin continued, or once the plugin continues the
	// stream. held streams are paused for the hostcalls.
	held bool
	// calledOut is set when the stream made an http or gRPC call in
	// the callback that paused it, or since: the call's answer then
	// decides, and a Continue at the end of the body does not release
	// the held headers.
	calledOut bool
	// sized is set by a headers phase whose body has a declared length:
	// a body that may be a stream (gRPC, chunked) is not buffered behind
	// held headers, which would wait for its end; such headers wait on
	// the plugin instead, as for a call.
	sized bool

	// failed and replied are read by the request and the response
	// goroutines, which may overlap (a request body still streaming
	// while the response arrives).
	failed  atomic.Bool // the fail strategy was applied
	replied atomic.Bool // the plugin answered locally
	// orphaned is set when the instance died while the stream was
	// neither running in it nor waiting on it: the plugin had let the
	// stream go on, so the stream finishes without it instead of
	// failing for another stream's crash.
	orphaned bool
}

// wakeUp tells a paused stream that something was decided for it.
func (s *filter) wakeUp() {
	if s.wake != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// fieldCount is the number of fields of h, each value of a name one, as
// Envoy counts a header map's entries for the callbacks' num_headers.
func fieldCount(h http.Header) int {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	return n
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// OnRequestHeaders runs proxy_on_request_headers. A Pause holds the
// stream until the plugin continues it (from an http call's answer, a
// tick), answers it, or the request's context ends.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_on_request_headers
func (s *filter) OnRequestHeaders(x *filters.Exchange, endStream bool) filters.Status {
	n := uint64(fieldCount(x.Request.Header) + 4)
	s.sized = x.Request.ContentLength >= 0
	return s.phase(x, func(v *vm) api.Function { return v.fn.onRequestHeaders }, n, b2u(endStream), false, endStream)
}

// OnRequestBody runs proxy_on_request_body with the body buffered so
// far. A Pause before the end of the body buffers it and calls again
// with more, as Envoy's StopIterationAndBuffer does; at the end it holds
// the stream like a header Pause.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_on_request_body
func (s *filter) OnRequestBody(x *filters.Exchange, body *filters.Buffer, endStream bool) filters.Status {
	st := s.phase(x, func(v *vm) api.Function { s.reqBody = body; return v.fn.onRequestBody },
		uint64(body.Len()), b2u(endStream), true, endStream)
	if st == filters.Continue && endStream && len(x.Request.Trailer) > 0 {
		st = s.phase(x, func(v *vm) api.Function { return v.fn.onRequestTrailers },
			uint64(fieldCount(x.Request.Trailer)), 0, false, true)
	}
	return st
}

// OnResponseHeaders runs proxy_on_response_headers.
func (s *filter) OnResponseHeaders(x *filters.Exchange, endStream bool) filters.Status {
	if s.id == 0 {
		// No context: the request stopped at a filter before this one,
		// whose local reply Envoy does not give a plugin that never saw
		// the request.
		return filters.Continue
	}
	n := uint64(fieldCount(x.Response.Header) + 1)
	s.sized = x.Response.Header.Get("Content-Length") != ""
	return s.phase(x, func(v *vm) api.Function { return v.fn.onResponseHeaders }, n, b2u(endStream), false, endStream)
}

// OnResponseBody runs proxy_on_response_body, with the semantics of
// OnRequestBody.
func (s *filter) OnResponseBody(x *filters.Exchange, body *filters.Buffer, endStream bool) filters.Status {
	if s.id == 0 {
		// No context: the request stopped at a filter before this one,
		// whose local reply Envoy does not give a plugin that never saw
		// the request.
		return filters.Continue
	}
	st := s.phase(x, func(v *vm) api.Function { s.respBody = body; return v.fn.onResponseBody },
		uint64(body.Len()), b2u(endStream), true, endStream)
	if st == filters.Continue && endStream && len(x.Response.Trailer) > 0 {
		st = s.phase(x, func(v *vm) api.Function { return v.fn.onResponseTrailers },
			uint64(fieldCount(x.Response.Trailer)), 0, false, true)
	}
	return st
}

// OnDone ends the stream's context: proxy_on_done, proxy_on_log (where
// the Go SDK runs OnHttpStreamDone), then proxy_on_delete.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#context-lifecycle
func (s *filter) OnDone(x *filters.Exchange) {
	defer s.f.done()
	v := s.vm
	if v == nil || s.id == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	defer delete(v.streams, s.id)
	if s.vmFailed || s.orphaned || v.dead.Load() {
		return
	}
	s.x = x
	for _, f := range []api.Function{v.fn.onDone, v.fn.onLog, v.fn.onDelete} {
		v.active, v.calling = s.id, s
		v.stack[0] = uint64(s.id)
		if _, err := v.invoke(f); err != nil {
			break
		}
	}
	v.calling = nil
}

// phase runs one stream callback and turns the plugin's action into the
// chain's status.
func (s *filter) phase(x *filters.Exchange, pick func(*vm) api.Function, a1, a2 uint64, body, end bool) filters.Status {
	if s.failed.Load() || s.replied.Load() {
		return filters.Continue
	}
	v := s.lock()
	if v == nil {
		return s.failure(x)
	}
	switch s.enter(x) {
	case lost:
		v.mu.Unlock()
		return filters.Continue
	case dead:
		v.mu.Unlock()
		return s.failure(x)
	}
	if s.held && s.decided() {
		// Decided while the headers were held, by an http call's answer
		// say: a resumed stream calls the plugin on as usual.
		s.held, s.paused, s.calledOut = false, false, false
		if s.reply != nil || s.reset || s.vmFailed {
			v.mu.Unlock()
			return s.resumed(x)
		}
		s.resume = false
	}
	fn := pick(v)
	v.stack[0], v.stack[1], v.stack[2] = uint64(s.id), a1, a2
	action, err := v.invoke(fn)
	v.calling = nil
	cont := action == actionContinue
	if s.held && (end || err != nil || s.decided()) {
		// The body is all in (or the stream decided): the held headers
		// go on with it, unless a call the plugin made is to decide.
		if err == nil && cont && s.calledOut && !s.decided() {
			cont = false
		}
		s.held, s.paused, s.calledOut = false, false, false
	}
	hold := err == nil && !cont && (!body || end) && !s.decided()
	if hold && !body && !end && s.sized && !s.calledOut {
		// Headers paused with the body to come: the chain buffers the
		// body through the body callbacks, which release them.
		s.held, s.paused = true, true
		v.mu.Unlock()
		return filters.StopAndBuffer
	}
	if hold {
		// Paused from now on, before another goroutine can take the
		// instance: an http call's answer may act for the stream as
		// soon as the lock is released.
		s.paused = true
	}
	v.mu.Unlock()
	if err != nil {
		return s.failure(x)
	}
	switch {
	case hold:
		return s.wait(x)
	case s.reply != nil:
		return s.sendReply(x)
	case s.reset:
		return filters.Stop
	case cont:
		return filters.Continue
	case body && !end:
		return filters.StopAndBuffer
	}
	// Continued (or failed) during the callback itself.
	return s.resumed(x)
}

// lock locks the stream's instance and returns it. A stream that has no
// context yet is moved off a dead instance onto a live one: nothing of
// it was lost, so it need not fail.
func (s *filter) lock() *vm {
	for range 3 {
		v := s.vm
		if v == nil || (s.id == 0 && v.dead.Load()) {
			nv, err := s.f.pool.pick()
			if err != nil {
				return nil
			}
			s.vm, v = nv, nv
		}
		v.mu.Lock()
		if s.id != 0 || !v.dead.Load() {
			return v
		}
		v.mu.Unlock()
	}
	return nil
}

// Outcomes of enter.
const (
	entered = iota
	lost    // the instance died after the stream's decisions were made
	dead    // the instance died, or died while the stream waited on it
)

// enter makes s the running context, creating it in the instance on
// the stream's first callback. v.mu is held.
func (s *filter) enter(x *filters.Exchange) int {
	v := s.vm
	if s.orphaned {
		return lost
	}
	if s.vmFailed || v.dead.Load() {
		return dead
	}
	s.x = x
	if s.id == 0 {
		r := v.root(s.f.plugin)
		if r.err != nil {
			return dead
		}
		v.nextID++
		s.id, s.root = v.nextID, r.id
		v.streams[s.id] = s
		v.enterRoot(r.id)
		v.stack[0], v.stack[1] = uint64(s.id), uint64(r.id)
		if _, err := v.invoke(v.fn.onContextCreate); err != nil {
			return dead
		}
	}
	v.active, v.calling = s.id, s
	if !s.held {
		s.resume, s.calledOut = false, false
	}
	return entered
}

// wait holds a paused stream until it is continued, answered, reset or
// its instance dies, or the request's context ends. s.paused is set.
func (s *filter) wait(x *filters.Exchange) filters.Status {
	v := s.vm
	v.mu.Lock()
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	for !s.decided() {
		v.mu.Unlock()
		select {
		case <-s.wake:
		case <-x.Context.Done():
			v.mu.Lock()
			s.paused = false
			v.mu.Unlock()
			return filters.Stop
		}
		v.mu.Lock()
	}
	s.paused = false
	v.mu.Unlock()
	return s.resumed(x)
}

// resumed turns what was decided for a paused stream into its status.
func (s *filter) resumed(x *filters.Exchange) filters.Status {
	switch {
	case s.reply != nil:
		return s.sendReply(x)
	case s.reset:
		return filters.Stop
	case s.vmFailed:
		return s.failure(x)
	}
	s.resume = false
	return filters.Continue
}

func (s *filter) decided() bool { return s.resume || s.reply != nil || s.reset || s.vmFailed }

func (s *filter) sendReply(x *filters.Exchange) filters.Status {
	r := *s.reply
	s.reply = nil
	s.replied.Store(true)
	x.SendLocalReply(r)
	return filters.Stop
}

// failure applies the plugin's fail strategy to a stream whose instance
// failed (or could not start): fail open skips the plugin for the rest
// of the stream; otherwise the stream ends with Envoy's 503.
func (s *filter) failure(x *filters.Exchange) filters.Status {
	s.failed.Store(true)
	if s.f.cfg.failOpen {
		return filters.Continue
	}
	x.SendLocalReply(filters.LocalReply{Status: http.StatusServiceUnavailable, Body: "wasm plugin failed", Details: "wasm_fail_stream"})
	return filters.Stop
}
