package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/waygate/waygate/gateway/istio"
	"github.com/waygate/waygate/gateway/istio/translate"
	"github.com/waygate/waygate/gateway/rls"
)

func init() {
	register("ratelimit-server", "serve Envoy's rate limit service from Redis, for global limits shared by gateways", runRateLimitServer)
}

// runRateLimitServer serves envoy.service.ratelimit.v3 on --listen, with
// envoyproxy/ratelimit's config format, counting in the Redis at
// --redis. SIGHUP reloads the config files; a file that fails to parse
// keeps the previous config.
func runRateLimitServer(args []string) int {
	fs := flag.NewFlagSet("ratelimit-server", flag.ContinueOnError)
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis address (host:port) shared by every replica")
	var configs stringList
	fs.Var(&configs, "config", "config file in envoyproxy/ratelimit's format (repeatable, or comma-separated)")
	var policies stringList
	fs.Var(&policies, "policies", "directory or file of RateLimitPolicy resources whose global rules make the config (repeatable)")
	listen := fs.String("listen", "127.0.0.1:8081", "gRPC listen address")
	sliding := fs.Bool("sliding-window", false, "count in a sliding window instead of fixed windows")
	prefix := fs.String("prefix", "", "prefix of the Redis keys (default waygate_rl_)")
	var lf logFlags
	lf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := lf.logger()
	if err == nil && len(configs)+len(policies) == 0 {
		err = errors.New("--config FILE or --policies DIR is required")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate ratelimit-server:", err)
		return 2
	}
	load := func() (*rls.Config, error) { return loadRateLimitConfig(configs, policies) }
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate ratelimit-server:", err)
		return 1
	}
	client := redis.NewClient(&redis.Options{Addr: *redisAddr})
	defer client.Close()
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = client.Ping(pctx).Err()
	cancel()
	if err != nil {
		// Not fatal: the service answers UNAVAILABLE until Redis is up,
		// and the filters' failure mode decides.
		log.Warn("redis not reachable yet", "redis", *redisAddr, "err", err)
	}
	svc := rls.New(cfg, rls.Options{Redis: client, Prefix: *prefix, SlidingWindow: *sliding, Log: log})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate ratelimit-server:", err)
		return 1
	}
	gs := grpc.NewServer()
	rlsv3.RegisterRateLimitServiceServer(gs, svc)
	// The standard gRPC health service, for Kubernetes probes.
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				next, err := load()
				if err != nil {
					log.Error("config reload failed; keeping the previous config", "err", err)
					continue
				}
				svc.SetConfig(next)
				log.Info("config reloaded")
			}
		}
	}()
	go func() {
		<-ctx.Done()
		hs.Shutdown()
		gs.GracefulStop()
	}()
	fmt.Printf("ratelimit-server listening on %s (redis %s)\n", ln.Addr(), *redisAddr)
	if err := gs.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "waygate ratelimit-server:", err)
		return 1
	}
	return 0
}

// loadRateLimitConfig reads the config files, then adds the config
// derived from the global rules of the RateLimitPolicies under policies
// (the same derivation the control plane's descriptors follow). A
// policy with validation errors is left out, as the control plane
// leaves it out.
func loadRateLimitConfig(configs, policies []string) (*rls.Config, error) {
	cfg, err := rls.LoadFiles(configs...)
	if err != nil || len(policies) == 0 {
		return cfg, err
	}
	ic, findings, err := istio.LoadPaths(policies...)
	if err != nil {
		return nil, err
	}
	findings = append(findings, istio.Validate(ic)...)
	ic = ic.WithoutInvalid(findings)
	if err := cfg.Add("policies", translate.RateLimitServiceConfig(ic)); err != nil {
		return nil, err
	}
	return cfg, nil
}

// stringList is a repeatable, comma-separated flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}
