package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/waygate/waygate/gateway/istio"
	"github.com/waygate/waygate/gateway/xds/server"
)

func init() {
	register("controlplane", "serve xDS translated from Istio resources (--config DIR or --kubernetes)", runControlPlane)
}

// sourceFlags choose where Istio resources come from.
type sourceFlags struct {
	config     string
	kubernetes bool
	kubeconfig string
	accessLog  string
	meshConfig string
}

func (f *sourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "directory of Istio YAML, watched for changes")
	fs.BoolVar(&f.kubernetes, "kubernetes", false, "read Istio resources, Services and EndpointSlices from Kubernetes")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for --kubernetes (default: in-cluster, then $KUBECONFIG)")
	fs.StringVar(&f.accessLog, "access-log", "/dev/stdout", "access log file for every HTTP listener, as meshConfig.accessLogFile (empty disables)")
	fs.StringVar(&f.meshConfig, "mesh-config", "", "Istio mesh config YAML (the istio ConfigMap's mesh key): its extensionProviders, which CUSTOM AuthorizationPolicies name, and defaultConfig.gatewayTopology")
}

func (f *sourceFlags) check() error {
	if (f.config == "") == !f.kubernetes {
		return errors.New("exactly one of --config DIR or --kubernetes is required")
	}
	if f.config != "" {
		if st, err := os.Stat(f.config); err != nil {
			return err
		} else if !st.IsDir() {
			return fmt.Errorf("--config %s: not a directory", f.config)
		}
	}
	return nil
}

// watch feeds the control plane from the chosen source until ctx is done,
// logging findings as they change. first is closed after the first load.
func (f *sourceFlags) watch(ctx context.Context, log *slog.Logger, cp *server.Server, first chan<- struct{}) error {
	closed := false
	var last string
	onChange := func(cfg *istio.Config, findings []istio.Finding) {
		cp.Update(cfg)
		report := ""
		for _, fd := range findings {
			if fd.Severity != istio.Info {
				report += fd.String() + "\n"
			}
		}
		if report != last {
			last = report
			for _, fd := range findings {
				switch fd.Severity {
				case istio.Error:
					log.Error("config skipped", "finding", fd.String())
				case istio.Warning:
					log.Warn("config", "finding", fd.String())
				}
			}
			log.Info("config loaded", "resources", len(cfg.Keys()))
		}
		if !closed {
			closed = true
			close(first)
		}
	}
	if f.kubernetes {
		return istio.WatchKubernetes(ctx, f.kubeconfig, onChange)
	}
	istio.WatchDir(ctx, f.config, 0, onChange)
	return nil
}

func runControlPlane(args []string) int {
	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	listen := fs.String("listen", ":15010", "xDS (gRPC, plaintext) listen address")
	var src sourceFlags
	src.register(fs)
	var cf caFlags
	cf.register(fs)
	var lf logFlags
	lf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := lf.logger()
	if err == nil {
		err = src.check()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate controlplane:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cp := server.New(log)
	cp.AccessLogFile = src.accessLog
	if err := src.applyMeshConfig(cp); err != nil {
		fmt.Fprintln(os.Stderr, "waygate controlplane:", err)
		return 2
	}
	if cp.CA, err = cf.workloads(); err != nil {
		fmt.Fprintln(os.Stderr, "waygate controlplane:", err)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate controlplane:", err)
		return 1
	}
	errc := make(chan error, 2)
	go func() { errc <- cp.Serve(ctx, ln) }()
	go func() { errc <- src.watch(ctx, log, cp, make(chan struct{})) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	stop()
	if err != nil {
		log.Error("waygate controlplane failed", "err", err)
		return 1
	}
	return 0
}
