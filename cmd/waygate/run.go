package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/snapshot"
	"github.com/waygate/waygate/gateway/xds/server"
)

func init() {
	register("run", "serve a directory of Istio YAML: control plane and gateway in one process", runRun)
}

func runRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	adminAddr := fs.String("admin", "127.0.0.1:15000", "admin server address (empty disables it)")
	demo := fs.Bool("demo-backends", false, "also start the Bookinfo demo backends on their loopback ports (see deploy/examples/bookinfo)")
	drain := fs.Duration("drain-time", 5*time.Second, "how long to let connections finish on shutdown")
	var src sourceFlags
	src.register(fs)
	var cf caFlags
	cf.register(fs)
	var id identityFlags
	id.register(fs)
	var lf logFlags
	lf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// `waygate run DIR` reads as well as `waygate run --config DIR`.
	if src.config == "" && fs.NArg() == 1 {
		src.config = fs.Arg(0)
	}
	log, err := lf.logger()
	if err == nil {
		err = src.check()
	}
	var labels map[string]string
	if err == nil {
		labels, err = id.labelMap()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate run:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *demo {
		stopBackends, err := backend.StartBookinfo()
		if err != nil {
			fmt.Fprintln(os.Stderr, "waygate run: demo backends:", err)
			return 1
		}
		defer stopBackends()
		for _, b := range backend.BookinfoBackends() {
			log.Info("demo backend", "service", b.Service, "version", b.Version, "address", b.Addr)
		}
	}

	// The control plane serves the embedded gateway over loopback gRPC:
	// the same xDS path as a remote istiod, so `run` exercises exactly
	// what `proxy` does.
	cp := server.New(log.With("component", "controlplane"))
	cp.AccessLogFile = src.accessLog
	if err := src.applyMeshConfig(cp); err != nil {
		fmt.Fprintln(os.Stderr, "waygate run:", err)
		return 2
	}
	if cp.CA, err = cf.workloads(); err != nil {
		fmt.Fprintln(os.Stderr, "waygate run:", err)
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate run:", err)
		return 1
	}
	go func() { _ = cp.Serve(ctx, ln) }()
	loaded := make(chan struct{})
	go func() {
		if err := src.watch(ctx, log.With("component", "controlplane"), cp, loaded); err != nil {
			log.Error("config source stopped", "err", err)
			stop()
		}
	}()
	select {
	case <-loaded:
	case <-ctx.Done():
		return 1
	}

	node, err := id.node(labels)
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate run:", err)
		return 2
	}
	g := gateway.New(gateway.Options{XDS: ln.Addr().String(), Node: node, Admin: *adminAddr, DrainTimeout: *drain, Log: log.With("component", "gateway")})
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-g.Ready():
		waitRoutes(g, 2*time.Second)
		printSummary(os.Stdout, src.config, g)
		settleMemory()
		go trimWhenIdle(ctx)
	case err := <-done:
		if err != nil {
			fmt.Fprintln(os.Stderr, "waygate run:", err)
		}
		return 1
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "waygate run: no listener from the configuration yet; is there a Gateway selecting labels", sortedLabels(labels)+"? Waiting.")
	}
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "waygate run:", err)
		return 1
	}
	return 0
}

// waitRoutes waits (bounded) until every route configuration the
// listeners name has arrived, so the summary shows the routes.
func waitRoutes(g *gateway.Gateway, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		snap := g.Builder.Current()
		missing := false
		for _, n := range g.Builder.Names(resourcev3.RouteType) {
			if snap.RouteTable(n) == nil {
				missing = true
			}
		}
		if !missing {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// printSummary tells a newcomer what is being served and what to curl.
// It writes the summary in one piece, so that a reader of the output
// never sees half of it.
func printSummary(out io.Writer, dir string, g *gateway.Gateway) {
	var w bytes.Buffer
	defer func() { _, _ = out.Write(w.Bytes()) }()
	snap := g.Builder.Current()
	fmt.Fprintf(&w, "\nwaygate is serving %s\n", dir)
	names := make([]string, 0, len(snap.Listeners))
	for n := range snap.Listeners {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		l := snap.Listeners[n]
		addr := g.Listeners.Addr(n)
		fmt.Fprintf(&w, "\n  listener %s on %s\n", n, l.Address)
		_, port, _ := net.SplitHostPort(addr)
		for _, line := range curlLines(snap, l.Proto.GetName(), port) {
			fmt.Fprintf(&w, "    %s\n", line)
		}
	}
	if a := g.AdminAddr(); a != "" {
		fmt.Fprintf(&w, "\n  admin: http://%s/ (config_dump, clusters, stats/prometheus)\n", a)
	}
	fmt.Fprintln(&w, "\nEdit the YAML and save: changes apply within a second. Ctrl-C stops.")
}

// curlLines lists a curl command per route of the listener's HTTP route
// configurations (TCP listeners get a netcat line).
func curlLines(snap *snapshot.Snapshot, listener, port string) []string {
	var out []string
	for _, rdsName := range routeNamesOf(snap, listener) {
		t := snap.RouteTable(rdsName)
		if t == nil {
			continue
		}
		for _, vh := range t.VirtualHosts() {
			host := ""
			if d := vh.Domains(); len(d) > 0 && d[0] != "*" && !strings.Contains(d[0], "*") {
				host = " -H 'Host: " + d[0] + "'"
			}
			for _, rt := range vh.Routes() {
				if len(out) >= 12 {
					return append(out, "...")
				}
				if c := curlFor(rt.Config().GetMatch(), port, host); c != "" {
					out = append(out, c)
				}
			}
		}
	}
	if len(out) == 0 {
		out = append(out, "nc 127.0.0.1 "+port)
	}
	return out
}

func routeNamesOf(snap *snapshot.Snapshot, listener string) []string {
	l := snap.Listeners[listener]
	if l == nil {
		return nil
	}
	var names []string
	for _, n := range listenerRouteNames(l) {
		names = append(names, n)
	}
	return names
}

func curlFor(m *routev3.RouteMatch, port, host string) string {
	path := m.GetPath()
	if path == "" {
		path = m.GetPrefix()
	}
	if path == "" {
		path = m.GetPathSeparatedPrefix()
	}
	if path == "" {
		return ""
	}
	hdr := ""
	for _, h := range m.GetHeaders() {
		if v := h.GetStringMatch().GetExact(); v != "" {
			hdr += fmt.Sprintf(" -H '%s: %s'", h.GetName(), v)
		}
	}
	return fmt.Sprintf("curl -s%s%s http://127.0.0.1:%s%s", host, hdr, port, path)
}

func listenerRouteNames(l *listener.Listener) []string { return listener.RouteNames(l) }
