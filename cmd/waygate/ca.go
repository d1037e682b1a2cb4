package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/waygate/waygate/gateway/ca"
)

func init() {
	register("ca", "issue a workload certificate from a mesh CA directory (--ca-dir), for clients and backends in the mesh", runCA)
}

// caFlags configure the mesh CA of the control plane, which signs each
// proxy's workload certificate as istiod does.
type caFlags struct {
	dir         string
	trustDomain string
	lifetime    time.Duration
}

func (f *caFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "ca-dir", "", "directory keeping the mesh CA root ("+ca.CertFile+", "+ca.KeyFile+"), made at first start (default: a root in memory, new at each start)")
	fs.StringVar(&f.trustDomain, "trust-domain", ca.DefaultTrustDomain, "trust domain of workload identities, spiffe://DOMAIN/ns/NS/sa/SA")
	fs.DurationVar(&f.lifetime, "workload-cert-ttl", ca.DefaultLifetime, "lifetime of workload certificates; they are renewed at half of it")
}

func (f *caFlags) open() (*ca.CA, error) {
	if f.dir == "" {
		return ca.New(f.trustDomain)
	}
	c, err := ca.Open(f.dir, f.trustDomain)
	if err != nil {
		return nil, fmt.Errorf("--ca-dir: %w", err)
	}
	return c, nil
}

// workloads opens the CA for the control plane.
func (f *caFlags) workloads() (*ca.Workloads, error) {
	c, err := f.open()
	if err != nil {
		return nil, err
	}
	return &ca.Workloads{CA: c, Lifetime: f.lifetime}, nil
}

// runCA writes a workload certificate, its key and the root, for a
// client or backend that must speak Istio mTLS with the gateway.
func runCA(args []string) int {
	fs := flag.NewFlagSet("ca", flag.ContinueOnError)
	var cf caFlags
	cf.register(fs)
	identity := fs.String("identity", "default/default", "NAMESPACE/SERVICE_ACCOUNT the certificate names")
	out := fs.String("out", ".", "directory to write cert-chain.pem, key.pem and root-cert.pem to")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ns, sa, ok := strings.Cut(*identity, "/")
	if cf.dir == "" || !ok {
		fmt.Fprintln(os.Stderr, "waygate ca: --ca-dir and --identity NAMESPACE/SERVICE_ACCOUNT are required")
		return 2
	}
	c, err := cf.open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate ca:", err)
		return 1
	}
	cert, err := c.Issue(ca.Identity{Namespace: ns, ServiceAccount: sa}, cf.lifetime)
	if err != nil {
		fmt.Fprintln(os.Stderr, "waygate ca:", err)
		return 1
	}
	// The file names of Istio's mounted workload certificates.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"cert-chain.pem", cert.ChainPEM, 0o644}, {"key.pem", cert.KeyPEM, 0o600}, {"root-cert.pem", c.RootPEM(), 0o644}} {
		if err := os.WriteFile(filepath.Join(*out, f.name), f.data, f.mode); err != nil {
			fmt.Fprintln(os.Stderr, "waygate ca:", err)
			return 1
		}
	}
	fmt.Printf("%s valid until %s, in %s\n", ca.Identity{Namespace: ns, ServiceAccount: sa}.SPIFFEID(c.TrustDomain), cert.NotAfter.Format(time.RFC3339), *out)
	return 0
}
