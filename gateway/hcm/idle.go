package hcm

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/router"
)

// errStreamIdle is the cause with which a stream's context ends when
// neither side moved for stream_idle_timeout.
var errStreamIdle = errors.New("stream idle timeout")

// startIdle arms the stream idle timeout: a stream with no request or
// response activity (headers, body chunks) for that long ends, with 408
// "stream timeout" when no response started and a reset otherwise, as in
// Envoy. It is what ends a request to a hung upstream on a route whose
// timeout is disabled (istiod's default).
//
// See https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto#envoy-v3-api-field-extensions-filters-network-http-connection-manager-v3-httpconnectionmanager-stream-idle-timeout
//
// With d = 0 it only makes the stream's context cancelable.
func (s *stream) startIdle(d time.Duration) {
	ctx, cancel := context.WithCancelCause(s.x.Context)
	s.x.Context, s.cancel = ctx, cancel
	if d > 0 {
		s.idleT = idleTimer{d: d, t: time.AfterFunc(d, func() { cancel(errStreamIdle) })}
		s.idle = &s.idleT
		s.enc.idle = s.idle
	}
}

// idleTimeoutFor returns the idle timeout the stream needs, 0 for none:
// the route's idle_timeout if it sets one (0 turning it off), else the
// connection manager's. A stream whose route timeout, which bounds the
// whole exchange, would end it first needs none; most requests are such,
// and are spared a timer and a cancelable context.
func idleTimeoutFor(x *filters.Exchange, idle time.Duration) time.Duration {
	rt, _ := router.Resolve(x.Route)
	if rt == nil || rt.Forward == nil {
		return 0 // answered locally, at once
	}
	if it := rt.Forward.IdleTimeout; it != nil {
		idle = *it
	}
	if idle <= 0 {
		return 0
	}
	if _, ok := x.Request.Header["X-Envoy-Upstream-Rq-Timeout-Ms"]; ok {
		return idle
	}
	if t := rt.Forward.Timeout; t <= 0 || t > idle || first(x.Request.Header["Upgrade"]) != "" {
		return idle
	}
	return 0
}

// idleTimedOut reports whether the stream ended by its idle timeout.
func (s *stream) idleTimedOut() bool {
	return s.idle != nil && context.Cause(s.x.Context) == errStreamIdle
}

// idleReply answers a stream that went idle before its response began.
func (s *stream) idleReply() {
	s.local(filters.LocalReply{Status: http.StatusRequestTimeout, Body: "stream timeout", Details: "stream_idle_timeout", Flag: "SI"}, nil)
}

// idleTimer is a stream's idle timeout, pushed back by activity.
type idleTimer struct {
	t *time.Timer
	d time.Duration
}

// touch records activity on the stream. It is safe on a nil timer.
func (it *idleTimer) touch() {
	if it != nil {
		it.t.Reset(it.d)
	}
}

func (it *idleTimer) stop() {
	if it != nil {
		it.t.Stop()
	}
}
