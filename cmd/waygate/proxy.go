package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/gateway"
	"github.com/waygate/waygate/gateway/xds/client"
)

func init() {
	register("proxy", "run the gateway, configured by an xDS server (--xds ADDR)", runProxy)
}

// identityFlags are the flags that say who the gateway is to its control
// plane. The defaults present it as Istio's ingress gateway, so Istio's
// samples and docs apply unchanged.
type identityFlags struct {
	nodeID    string
	cluster   string
	namespace string
	labels    string
	ip        string
	locality  string
	network   string
	// proxyConfig is ProxyConfig YAML or JSON, as the
	// proxy.istio.io/config annotation holds it.
	proxyConfig string
}

func (f *identityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.nodeID, "node-id", "", "xDS node id (default: router~IP~waygate.NAMESPACE~NAMESPACE.svc.cluster.local, as an Istio gateway)")
	fs.StringVar(&f.cluster, "service-cluster", "istio-ingressgateway", "xDS node cluster")
	fs.StringVar(&f.namespace, "namespace", "istio-system", "namespace the gateway runs in")
	fs.StringVar(&f.labels, "labels", "istio=ingressgateway,app=istio-ingressgateway", "workload labels, k=v,k=v: Gateways select the proxy by these")
	fs.StringVar(&f.ip, "ip", "127.0.0.1", "the gateway's IP, for its node id")
	fs.StringVar(&f.proxyConfig, "proxy-config", "", `the gateway's ProxyConfig, YAML or JSON as the proxy.istio.io/config annotation holds it (node metadata PROXY_CONFIG), e.g. '{gatewayTopology: {numTrustedProxies: 1}}'`)
	fs.StringVar(&f.network, "network", "", "the gateway's network (node metadata NETWORK), which DestinationRules' failoverPriority can name as topology.istio.io/network")
	fs.StringVar(&f.locality, "locality", "", "the gateway's locality, region[/zone[/subzone]], for locality load balancing (a Kubernetes pod's comes from its node's topology labels)")
}

// node is the gateway's xDS node, with its locality, network and
// ProxyConfig.
func (f *identityFlags) node(labels map[string]string) (*corev3.Node, error) {
	n := client.NewNode(f.nodeID, f.cluster, f.namespace, labels, f.ip)
	if f.locality != "" {
		parts := strings.SplitN(f.locality, "/", 3)
		for len(parts) < 3 {
			parts = append(parts, "")
		}
		n.Locality = &corev3.Locality{Region: parts[0], Zone: parts[1], SubZone: parts[2]}
	}
	if f.network != "" {
		n.Metadata.Fields["NETWORK"] = structpb.NewStringValue(f.network)
	}
	if f.proxyConfig != "" {
		pc, err := proxyConfigStruct(f.proxyConfig)
		if err != nil {
			return nil, fmt.Errorf("--proxy-config: %w", err)
		}
		n.Metadata.Fields["PROXY_CONFIG"] = structpb.NewStructValue(pc)
	}
	return n, nil
}

func (f *identityFlags) labelMap() (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(f.labels, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels: %q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// logFlags choose the log level and format.
type logFlags struct {
	level string
	json  bool
}

func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.level, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.json, "log-json", false, "log JSON lines instead of text")
}

func (f *logFlags) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if f.json {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}

func runProxy(args []string) int {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	xds := fs.String("xds", "", "xDS server address, host:port (required; istiod serves plaintext xDS on :15010)")
	delta := fs.Bool("delta", false, "use the incremental (Delta) xDS protocol")
	adminAddr := fs.String("admin", "127.0.0.1:15000", "admin server address (empty disables it)")
	drain := fs.Duration("drain-time", 45*time.Second, "how long to let connections finish on shutdown")
	var id identityFlags
	id.register(fs)
	var lf logFlags
	lf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *xds == "" {
		fmt.Fprintln(os.Stderr, "waygate proxy: --xds is required")
		return 2
	}
	log, err := lf.logger()
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate proxy:", err)
		return 2
	}
	labels, err := id.labelMap()
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate proxy:", err)
		return 2
	}
	node, err := id.node(labels)
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate proxy:", err)
		return 2
	}
	g := gateway.New(gateway.Options{XDS: *xds, Delta: *delta, Node: node, Admin: *adminAddr, DrainTimeout: *drain, Log: log})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("waygate proxy starting", "xds", *xds, "node", node.GetId(), "labels", sortedLabels(labels), "admin", *adminAddr)
	if err := g.Run(ctx); err != nil {
		log.Error("waygate proxy failed", "err", err)
		return 1
	}
	return 0
}

func sortedLabels(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
