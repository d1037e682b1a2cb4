package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/istio"
	"github.com/waygate/waygate/gateway/istio/translate"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/tlsconfig"
	"github.com/waygate/waygate/gateway/upstream"
)

// secrets serves the translated SDS secrets by name.
type secrets map[string]*tlsv3.Secret

func (s secrets) Secret(name string) *tlsv3.Secret { return s[name] }

// TestTranslationsAccepted compiles what the control plane makes of each
// translation case (gateway/istio/translate/testdata) with the data
// plane's own compilers: every cluster, route table and listener Waygate
// generates must be one Waygate accepts, as it accepts istiod's.
func TestTranslationsAccepted(t *testing.T) {
	inputs, err := filepath.Glob("istio/translate/testdata/*/input.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no translation cases: %v", err)
	}
	for _, in := range inputs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			cfg, findings := istio.ParseDocuments(in, data)
			for _, f := range findings {
				if f.Severity == istio.Error {
					t.Skipf("the case's input is invalid on purpose: %s", f)
				}
			}
			// Certificate paths in inputs are relative to the case.
			t.Chdir(dir)
			res, _ := translate.Translate(cfg, translate.Proxy{ID: "router~10.0.0.1~ingress~istio-system.svc.cluster.local"})

			clusters := map[string]*clusterv3.Cluster{}
			for _, c := range res.Clusters {
				clusters[c.GetName()] = c
			}
			assignments := map[string]*endpointv3.ClusterLoadAssignment{}
			for _, e := range res.Endpoints {
				assignments[e.GetClusterName()] = e
			}
			sec := secrets{}
			for _, s := range res.Secrets {
				sec[s.GetName()] = s
			}
			m := upstream.NewManager()
			t.Cleanup(m.Close)
			if _, err := m.BuildWithSecrets(clusters, assignments, sec); err != nil {
				t.Errorf("clusters: %v", err)
			}
			for _, rc := range res.Routes {
				if _, err := router.Compile(rc); err != nil {
					t.Errorf("route configuration %q: %v", rc.GetName(), err)
				}
			}
			c := &hcm.Compiler{}
			c.Begin()
			t.Cleanup(c.Sweep)
			for _, l := range res.Listeners {
				_, err := listener.Compile(l, listener.Deps{HCM: c, Secrets: sec})
				// A WasmPlugin's filter waits for its extension config,
				// which the gateway receives over ECDS.
				if err != nil && !errors.Is(err, hcm.ErrMissingExtension) && !errors.Is(err, tlsconfig.ErrMissingSecret) {
					t.Errorf("listener %q: %v", l.GetName(), err)
				}
			}
		})
	}
}
