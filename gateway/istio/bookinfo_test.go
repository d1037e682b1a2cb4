package istio

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBookinfoSamples loads Istio's own Bookinfo samples: each file alone
// must parse without an error, and validate cleanly when applied on top
// of the gateway and the destination rules, as the Istio tasks do.
func TestBookinfoSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/bookinfo/*.yaml")
	if err != nil || len(files) != 12 {
		t.Fatalf("found %d sample files (%v), want 12", len(files), err)
	}
	base := []string{"testdata/bookinfo/bookinfo-gateway.yaml", "testdata/bookinfo/destination-rule-all.yaml"}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, findings := ParseDocuments(file, data)
			for _, f := range findings {
				t.Errorf("%s: %s", f.Severity, f)
			}
			if len(cfg.Origins) == 0 {
				t.Fatal("no resources loaded")
			}
			paths := base
			if file != base[0] && file != base[1] {
				paths = append(paths[:2:2], file)
			}
			all, findings, err := LoadPaths(paths...)
			if err != nil {
				t.Fatal(err)
			}
			findings = append(findings, Validate(all)...)
			for _, f := range findings {
				t.Errorf("%s: %s", f.Severity, f)
			}
		})
	}
}

func TestBookinfoDecodesSpecs(t *testing.T) {
	cfg, findings, err := LoadPaths("testdata/bookinfo/bookinfo-gateway.yaml", "testdata/bookinfo/virtual-service-ratings-test-delay.yaml")
	if err != nil || len(findings) != 0 {
		t.Fatalf("err %v, findings %v", err, findings)
	}
	if got := cfg.Gateways[0].Spec.GetServers()[0].GetPort().GetNumber(); got != 8080 {
		t.Errorf("gateway port = %d, want 8080", got)
	}
	if got := cfg.Gateways[0].APIVersion; got != "networking.istio.io/v1" {
		t.Errorf("apiVersion = %q, want the v1 the resource is converted to", got)
	}
	var ratings = cfg.VirtualServices[1]
	delay := ratings.Spec.GetHttp()[0].GetFault().GetDelay()
	if delay.GetFixedDelay().AsDuration().Seconds() != 7 || delay.GetPercentage().GetValue() != 100 {
		t.Errorf("delay = %v, want 7s at 100%%", delay)
	}
	if got := ratings.Spec.GetHttp()[0].GetMatch()[0].GetHeaders()["end-user"].GetExact(); got != "jason" {
		t.Errorf("header match = %q, want jason", got)
	}
	if ratings.Namespace != "default" {
		t.Errorf("namespace = %q, want default", ratings.Namespace)
	}
}
