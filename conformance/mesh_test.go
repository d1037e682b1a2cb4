package conformance

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The mesh placeholders name files `waygate ca` wrote: a chain whose
// leaf carries the identity's SPIFFE URI and is signed by {{mesh_ca}}.
func TestMeshPlaceholders(t *testing.T) {
	bin := testBinary(t)
	m, err := newMeshCA(bin, t.TempDir(), []string{"default/sleep"})
	if err != nil {
		t.Fatal(err)
	}
	p := &ports{backends: map[string]int{}, gateway: map[string]int{}, issuers: map[string]*issuer{}, mesh: m}
	file := filepath.Join(t.TempDir(), "x.yaml")
	os.WriteFile(file, []byte(`{{mesh_cert "default/sleep"}} {{mesh_key "default/sleep"}} {{mesh_ca}} {{mesh_cert "foo/httpbin"}}`), 0o644)
	out, err := p.render(file)
	if err != nil {
		t.Fatal(err)
	}
	files := strings.Fields(string(out))
	if len(files) != 4 {
		t.Fatalf("rendered %q", out)
	}
	roots := x509.NewCertPool()
	root, _ := os.ReadFile(files[2])
	if !roots.AppendCertsFromPEM(root) {
		t.Fatalf("{{mesh_ca}} %s holds no certificate", files[2])
	}
	for _, tc := range []struct{ file, want string }{
		{files[0], "spiffe://cluster.local/ns/default/sa/sleep"},
		{files[3], "spiffe://cluster.local/ns/foo/sa/httpbin"},
	} {
		b, _ := os.ReadFile(tc.file)
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM", tc.file)
		}
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if len(leaf.URIs) != 1 || leaf.URIs[0].String() != tc.want {
			t.Errorf("%s names %v, want %s", tc.file, leaf.URIs, tc.want)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: %v", tc.file, err)
		}
	}
	if key, _ := os.ReadFile(files[1]); !strings.Contains(string(key), "PRIVATE KEY") {
		t.Errorf("{{mesh_key}} %s holds no key", files[1])
	}

	p.mesh = nil
	os.WriteFile(file, []byte(`{{mesh_ca}}`), 0o644)
	if _, err := p.render(file); err == nil || !strings.Contains(err.Error(), "meshCA: true") {
		t.Errorf("without a mesh CA: render error %v", err)
	}
}

// meshIdentity needs a mesh CA, TLS and an identity waygate ca takes.
func TestLoadRejectsMeshIdentity(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no mesh CA", "steps:\n- apply: [scenario.yaml]\n  checks:\n  - {request: {protocol: https, meshIdentity: default/sleep}, expect: {status: 200}}\n", "add meshCA: true"},
		{"plain text", "meshCA: true\nsteps:\n- apply: [scenario.yaml]\n  checks:\n  - {request: {meshIdentity: default/sleep}, expect: {status: 200}}\n", "protocol https or h2"},
		{"bad identity", "meshCA: true\nsteps:\n- apply: [scenario.yaml]\n  checks:\n  - {request: {protocol: h2, meshIdentity: sleep}, expect: {status: 200}}\n", "NAMESPACE/SERVICE_ACCOUNT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "scenario.yaml"), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
