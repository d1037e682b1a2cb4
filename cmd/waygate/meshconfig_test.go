package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadMeshConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "mesh.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mc, err := loadMeshConfig(write(`
accessLogFile: /dev/stdout
extensionProviders:
- name: sample-ext-authz-http
  envoyExtAuthzHttp:
    service: ext-authz.foo.svc.cluster.local
    port: 8000
    timeout: 2s
    includeRequestHeadersInCheck: ["x-ext-authz"]
- name: sample-ext-authz-grpc
  envoyExtAuthzGrpc:
    service: ext-authz.foo.svc.cluster.local
    port: 9000
`))
	if err != nil {
		t.Fatal(err)
	}
	ps := mc.GetExtensionProviders()
	if len(ps) != 2 || ps[0].GetEnvoyExtAuthzHttp().GetTimeout().AsDuration().Seconds() != 2 || ps[1].GetEnvoyExtAuthzGrpc().GetPort() != 9000 {
		t.Errorf("providers = %v", ps)
	}
	for body, want := range map[string]string{
		"extensionProviders: [{envoyExtAuthzHttp: {service: x}}]": "extensionProviders[0].name: required",
		"extensionProviders: {}":                                  "not an Istio mesh config",
	} {
		if _, err := loadMeshConfig(write(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", body, err, want)
		}
	}
}
