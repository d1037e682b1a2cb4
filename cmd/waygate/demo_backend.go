package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/waygate/waygate/conformance/backend"
)

func init() {
	register("demo-backend", "run echo backends to route to: one service version, or the Bookinfo set", func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return demoBackend(ctx, args, os.Stdout, os.Stderr)
	})
}

// demoBackend runs until ctx ends. It prints one line per backend once
// all of them listen, "<service> <version> <url>", so a script (or a
// test) can wait for that line and read the address from it.
func demoBackend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: waygate demo-backend --service NAME [--version v1] [--listen 127.0.0.1:0] [flags]
       waygate demo-backend --bookinfo

Runs echo backends that answer as a named service and version; see
deploy/examples/bookinfo for the Istio configuration that routes to them.

`)
		fs.PrintDefaults()
	}
	var (
		service     = fs.String("service", "", "service name to answer as (reviews, ratings, productpage, ...)")
		version     = fs.String("version", "v1", "version to answer as")
		listen      = fs.String("listen", "127.0.0.1:0", "address to listen on")
		bookinfo    = fs.Bool("bookinfo", false, "run the whole Bookinfo set on the fixed ports deploy/examples/bookinfo uses")
		tcpEcho     = fs.Bool("tcp-echo", false, "run a tcp-echo server instead of HTTP")
		prefix      = fs.String("prefix", "", "tcp-echo prefix (default: the version)")
		failPercent = fs.Int("fail-percent", 0, "answer this percentage of requests with 503")
		unhealthy   = fs.Bool("unhealthy", false, "start with /healthz answering 503")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "waygate demo-backend: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	var stop func()
	if *bookinfo {
		if *service != "" || *tcpEcho {
			fmt.Fprintln(stderr, "waygate demo-backend: --bookinfo runs a fixed set; drop --service and --tcp-echo")
			return 2
		}
		set := backend.BookinfoBackends()
		closeAll, addrs, err := backend.StartBackends(set)
		if err != nil {
			fmt.Fprintf(stderr, "waygate demo-backend: %v\n", err)
			return 1
		}
		stop = closeAll
		for i, b := range set {
			printBackend(stdout, b.Service, b.Version, b.TCP(), addrs[i])
		}
	} else {
		if *service == "" {
			fmt.Fprintln(stderr, "waygate demo-backend: --service or --bookinfo is required")
			fs.Usage()
			return 2
		}
		opts := backend.Options{
			Service: *service, Version: *version, Addr: *listen, Prefix: *prefix,
			FailPercent: *failPercent, Unhealthy: *unhealthy,
		}
		var (
			c    io.Closer
			addr string
			err  error
		)
		if *tcpEcho {
			var s *backend.TCPServer
			if s, err = backend.StartTCPEcho(opts); err == nil {
				c, addr = s, s.Addr()
			}
		} else {
			var s *backend.Server
			if s, err = backend.Start(opts); err == nil {
				c, addr = s, s.Addr()
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "waygate demo-backend: %v\n", err)
			return 1
		}
		stop = func() { c.Close() }
		printBackend(stdout, *service, *version, *tcpEcho, addr)
	}
	<-ctx.Done()
	stop()
	return 0
}

func printBackend(w io.Writer, service, version string, tcp bool, addr string) {
	scheme := "http"
	if tcp {
		scheme = "tcp"
	}
	fmt.Fprintf(w, "%s %s %s://%s\n", service, version, scheme, addr)
}
