package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"

	"github.com/waygate/waygate/gateway/stats"
)

// DefaultAddress is where Envoy, and Istio's probes, expect the admin
// interface.
const DefaultAddress = "127.0.0.1:15000"

// Source is the gateway's view the admin endpoints render. Every method is
// called per request and must be safe for concurrent use; it reads the
// current snapshot.
type Source interface {
	// ConfigDump is Envoy's config dump: one Any per
	// Bootstrap/Listeners/Clusters/Routes/Secrets config dump, with the
	// endpoints config dump only when includeEDS is set.
	ConfigDump(includeEDS bool) *adminv3.ConfigDump
	Clusters() *adminv3.Clusters
	Listeners() *adminv3.Listeners
	// Ready reports that the first config was applied and the gateway is
	// not draining.
	Ready() bool
	ServerInfo() *adminv3.ServerInfo
}

// Options configure a Server. Source is required; without Stats the
// server keeps its own store. The callbacks may be nil, and their
// endpoints then answer 501.
type Options struct {
	Source Source
	Stats  *stats.Store
	Log    *slog.Logger

	// Quit is called after /quitquitquit answered.
	Quit func()
	// DrainListeners stops the listeners, gracefully (let connections
	// finish within the drain period) or at once.
	DrainListeners func(graceful bool)
	// LogLevel, when set, is the level /logging reads and changes.
	LogLevel *slog.LevelVar
	// HealthCheckFail switches the gateway's health-check answers (the
	// health_check filter, and /ready) to failing and back.
	HealthCheckFail func(failing bool)
}

// Server is the admin HTTP handler.
type Server struct {
	opts      Options
	mux       *http.ServeMux
	endpoints []endpoint

	hcFailing atomic.Bool
	draining  atomic.Bool
}

type endpoint struct {
	path, help string
	post       bool // mutating: Envoy refuses GET
	h          http.HandlerFunc
}

// New returns the admin server for opts.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Stats == nil {
		opts.Stats = stats.NewStore()
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.endpoints = []endpoint{
		{"/", "Admin home page", false, s.help},
		{"/help", "print out list of admin commands", false, s.help},
		{"/ready", "print server state, return 200 if LIVE, otherwise return 503", false, s.ready},
		{"/server_info", "print server version/status information", false, s.serverInfo},
		{"/config_dump", "dump current Envoy configs (experimental)", false, s.configDump},
		{"/clusters", "upstream cluster status", false, s.clusters},
		{"/listeners", "print listener info", false, s.listeners},
		{"/stats", "print server stats", false, s.stats},
		{"/stats/prometheus", "print server stats in prometheus format", false, s.prometheus},
		{"/runtime", "print runtime values", false, s.runtime},
		{"/memory", "print current allocation/heap usage", false, s.memory},
		{"/quitquitquit", "exit the server", true, s.quit},
		{"/drain_listeners", "drain listeners", true, s.drainListeners},
		{"/healthcheck/fail", "cause the server to fail health checks", true, s.healthcheck(true)},
		{"/healthcheck/ok", "cause the server to pass health checks", true, s.healthcheck(false)},
		{"/logging", "query/change logging levels", true, s.logging},
	}
	for _, e := range s.endpoints {
		h := e.h
		if e.post {
			h = requirePOST(h)
		}
		pattern := e.path
		if pattern == "/" {
			pattern = "/{$}"
		}
		s.mux.HandleFunc(pattern, h)
	}
	// Go's profiler takes the place of Envoy's /cpuprofiler and
	// /heapprofiler, which write to files on the proxy's disk.
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// Envoy's server state stats, which probes and dashboards read
	// (pilot-agent's readiness check greps server.state).
	opts.Stats.GaugeFunc("server.state", func() int64 { return int64(s.state()) })
	opts.Stats.GaugeFunc("server.live", func() int64 {
		if s.hcFailing.Load() || s.draining.Load() {
			return 0
		}
		return 1
	})
	return s
}

// ServeHTTP answers one admin request. Unknown paths get 404 with the
// command list, as in Envoy.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.opts.Log.Debug("admin request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery)
	if _, pattern := s.mux.Handler(r); pattern == "" {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "invalid path. ")
		s.writeHelp(w)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// requirePOST refuses other methods as Envoy does for endpoints that
// change state, so a crawler or a browser prefetch cannot stop the proxy.
func requirePOST(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			text(w, http.StatusMethodNotAllowed, "This endpoint requires POST\n")
			return
		}
		h(w, r)
	}
}

func (s *Server) help(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	s.writeHelp(w)
}

func (s *Server) writeHelp(w http.ResponseWriter) {
	eps := append([]endpoint(nil), s.endpoints...)
	eps = append(eps, endpoint{path: "/debug/pprof/", help: "Go runtime profiles (cpu: /debug/pprof/profile, heap: /debug/pprof/heap)"})
	sort.Slice(eps, func(i, j int) bool { return eps[i].path < eps[j].path })
	var b strings.Builder
	b.WriteString("admin commands are:\n")
	for _, e := range eps {
		method := ""
		if e.post {
			method = " (POST)"
		}
		fmt.Fprintf(&b, "  %s%s: %s\n", e.path, method, e.help)
	}
	fmt.Fprint(w, b.String())
}

// ListenAndServe serves the admin interface on addr until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the admin interface on ln until ctx is done, then closes
// it, letting requests in flight finish for up to five seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.opts.Log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
		case <-done:
		}
	}()
	s.opts.Log.Info("admin interface listening", "address", ln.Addr().String())
	err := hs.Serve(ln)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(code)
	fmt.Fprint(w, body)
}
