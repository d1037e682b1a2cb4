package admin

import (
	"net/http"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
)

// state is the server state as Envoy reports it in /ready and
// /server_info: failing health checks or draining listeners count as
// DRAINING, so load balancers and the readiness probe stop sending
// traffic before the listeners go away.
func (s *Server) state() adminv3.ServerInfo_State {
	switch {
	case s.hcFailing.Load() || s.draining.Load():
		return adminv3.ServerInfo_DRAINING
	case !s.opts.Source.Ready():
		return adminv3.ServerInfo_PRE_INITIALIZING
	}
	return adminv3.ServerInfo_LIVE
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	st := s.state()
	code := http.StatusOK
	if st != adminv3.ServerInfo_LIVE {
		code = http.StatusServiceUnavailable
	}
	text(w, code, st.String()+"\n")
}

func (s *Server) quit(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Quit == nil {
		text(w, http.StatusNotImplemented, "quit is not supported by this server\n")
		return
	}
	text(w, http.StatusOK, "OK\n")
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.opts.Log.Info("quit requested via admin")
	// Quit may shut this very server down, which waits for this handler.
	go s.opts.Quit()
}

// drainListeners follows Envoy: ?graceful drains over the drain period
// instead of closing at once. ?inboundonly limits Envoy to listeners with
// traffic_direction INBOUND; a gateway's listeners all take traffic from
// outside, so it drains them all either way.
func (s *Server) drainListeners(w http.ResponseWriter, r *http.Request) {
	if s.opts.DrainListeners == nil {
		text(w, http.StatusNotImplemented, "drain_listeners is not supported by this server\n")
		return
	}
	_, graceful := r.URL.Query()["graceful"]
	s.draining.Store(true)
	s.opts.Log.Info("listener drain requested via admin", "graceful", graceful)
	s.opts.DrainListeners(graceful)
	text(w, http.StatusOK, "OK\n")
}

func (s *Server) healthcheck(failing bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		s.hcFailing.Store(failing)
		if s.opts.HealthCheckFail != nil {
			s.opts.HealthCheckFail(failing)
		}
		s.opts.Log.Info("health check state changed via admin", "failing", failing)
		text(w, http.StatusOK, "OK\n")
	}
}
