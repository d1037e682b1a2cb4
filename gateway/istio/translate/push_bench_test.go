package translate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/waygate/waygate/gateway/istio"
)

// pushConfig is a Gateway, a ServiceEntry and one VirtualService of n
// prefix routes: the shape of the 10,000-route push of the load harness.
func pushConfig(n int) []byte {
	var b strings.Builder
	b.WriteString(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: default}
spec:
  hosts: [backend.bench]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9000, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bench]
  http:
`)
	dest := "    route: [{destination: {host: backend.bench, port: {number: 9000}}}]\n"
	for i := range n {
		fmt.Fprintf(&b, "  - match: [{uri: {prefix: /r%d/}}]\n", i)
		b.WriteString(dest)
	}
	b.WriteString("  - name: default\n" + dest)
	return []byte(b.String())
}

// BenchmarkPush10k is the control plane's share of a push of 10,000
// routes: parse and validate the files, accept, translate.
func BenchmarkPush10k(b *testing.B) {
	data := pushConfig(10000)
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, fs := istio.ParseDocuments("vs.yaml", data); hasError(fs) {
				b.Fatal(fs)
			}
		}
	})
	cfg, fs := istio.ParseDocuments("vs.yaml", data)
	b.Run("accept", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			istio.Accept(nil, cfg, fs)
		}
	})
	cfg, _ = istio.Accept(nil, cfg, fs)
	b.Run("translate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, _ := Translate(cfg, Proxy{ID: "bench"})
			if res == nil {
				b.Fatal("no resources")
			}
		}
	})
}

func hasError(fs []istio.Finding) bool {
	for _, f := range fs {
		if f.Severity == istio.Error {
			return true
		}
	}
	return false
}
