// Package gateway assembles the data plane: an xDS client feeding the
// snapshot builder, the listeners serving from the snapshot, the admin
// server, and the stats store. `waygate proxy` and `waygate run` both
// start one.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/accesslog"
	"github.com/waygate/waygate/gateway/admin"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/snapshot"
	"github.com/waygate/waygate/gateway/stats"
	"github.com/waygate/waygate/gateway/upstream"
	"github.com/waygate/waygate/gateway/xds/client"

	// Built-in filters register themselves by config type URL.
	_ "github.com/waygate/waygate/filters/authz"
	_ "github.com/waygate/waygate/filters/compressor"
	_ "github.com/waygate/waygate/filters/cors"
	_ "github.com/waygate/waygate/filters/extauthz"
	_ "github.com/waygate/waygate/filters/fault"
	_ "github.com/waygate/waygate/filters/headers"
	_ "github.com/waygate/waygate/filters/jwt"
	_ "github.com/waygate/waygate/filters/lua"
	_ "github.com/waygate/waygate/filters/ratelimit"
	_ "github.com/waygate/waygate/filters/router"
	_ "github.com/waygate/waygate/filters/wasm"
	// Every extension type istiod may send, so its configs decode.
	_ "github.com/waygate/waygate/gateway/xds/extensions"
)

// Options configure a Gateway.
type Options struct {
	// XDS is the xDS server's address (host:port).
	XDS string
	// Delta selects the incremental xDS protocol.
	Delta bool
	// DialOptions override the gRPC dial options (insecure by default).
	DialOptions []grpc.DialOption
	// Node is the identity presented to the xDS server.
	Node *corev3.Node
	// Admin is the admin listen address ("" disables the admin server).
	Admin string
	// DrainTimeout bounds graceful drains (45s by default, as Istio).
	DrainTimeout time.Duration
	Log          *slog.Logger
}

// Gateway is a running data plane.
type Gateway struct {
	opts      Options
	log       *slog.Logger
	Stats     *stats.Store
	Builder   *snapshot.Builder
	Listeners *listener.Manager
	xds       *client.Client
	admin     *admin.Server
	adminAddr atomic.Value // string
	started   time.Time
	draining  atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once
	quit      chan struct{}
	quitOnce  sync.Once

	logMu   sync.Mutex
	loggers map[string]*accesslog.Logger
}

// accessLogger compiles an access log config, sharing one logger (and
// its file) between every listener that configures the same one.
func (g *Gateway) accessLogger(cfg *accesslogv3.AccessLog) (hcm.AccessLogger, error) {
	key, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	g.logMu.Lock()
	defer g.logMu.Unlock()
	if l, ok := g.loggers[string(key)]; ok {
		return l, nil
	}
	l, err := accesslog.FromProto(cfg)
	if err != nil {
		return nil, err
	}
	if g.loggers == nil {
		g.loggers = map[string]*accesslog.Logger{}
	}
	g.loggers[string(key)] = l
	return l, nil
}

// New builds a gateway; nothing listens until Run.
func New(opts Options) *Gateway {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	g := &Gateway{opts: opts, log: log, Stats: stats.NewStore(), started: time.Now(),
		ready: make(chan struct{}), quit: make(chan struct{})}
	env := filters.Env{Log: log, Node: opts.Node, Stats: g.Stats.Filters(), Upstream: clusterCaller{g}}
	compiler := &hcm.Compiler{Env: env, Stats: g.Stats, AccessLog: g.accessLogger}
	um := upstream.NewManager()
	um.Stats = g.Stats
	um.Log = log
	g.Builder = &snapshot.Builder{HCM: compiler, Upstream: um, Log: log}
	handler := &hcm.Handler{Views: g.Builder.View, Panics: g.Stats.Counter("http.filter_panics")}
	g.Listeners = &listener.Manager{Views: g.Builder.View, Log: log, DrainTimeout: opts.DrainTimeout, Handler: handler}
	g.Builder.Listeners = g.Listeners
	g.Builder.OnSwap = func(s *snapshot.Snapshot) {
		if len(s.Listeners) > 0 {
			g.readyOnce.Do(func() { close(g.ready) })
		}
	}
	g.xds = client.New(client.Options{Address: opts.XDS, Node: opts.Node, Delta: opts.Delta, DialOptions: opts.DialOptions, Log: log}, g.Builder)
	g.admin = admin.New(admin.Options{
		Source: source{g}, Stats: g.Stats, Log: log,
		Quit: g.Quit,
		DrainListeners: func(graceful bool) {
			g.draining.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), g.drainTimeout(graceful))
			defer cancel()
			g.Listeners.Drain(ctx)
		},
	})
	return g
}

// Ready is closed once the first listeners serve.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// XDSStatus reports the xDS connection, per resource type.
func (g *Gateway) XDSStatus() client.Status { return g.xds.Status() }

// AdminAddr is the admin server's bound address, once Run bound it.
func (g *Gateway) AdminAddr() string {
	s, _ := g.adminAddr.Load().(string)
	return s
}

// Quit asks Run to drain and return.
func (g *Gateway) Quit() { g.quitOnce.Do(func() { close(g.quit) }) }

// Run serves until ctx is done or Quit is called, then drains the
// listeners (letting requests in flight finish, up to the drain timeout)
// and returns.
func (g *Gateway) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if g.opts.Admin != "" {
		ln, err := net.Listen("tcp", g.opts.Admin)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		g.adminAddr.Store(ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.admin.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, net.ErrClosed) {
				g.log.Error("admin server stopped", "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = g.xds.Run(ctx)
	}()
	select {
	case <-ctx.Done():
	case <-g.quit:
	}
	g.draining.Store(true)
	g.log.Info("draining listeners", "timeout", g.drainTimeout(true))
	dctx, dcancel := context.WithTimeout(context.Background(), g.drainTimeout(true))
	g.Listeners.Drain(dctx)
	dcancel()
	cancel()
	wg.Wait()
	// Health checkers and DNS resolvers stop with the clusters.
	g.Builder.Upstream.Close()
	return nil
}

func (g *Gateway) drainTimeout(graceful bool) time.Duration {
	if !graceful {
		return 0
	}
	if g.opts.DrainTimeout > 0 {
		return g.opts.DrainTimeout
	}
	return 45 * time.Second
}
