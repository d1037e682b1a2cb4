package conformance

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// gatewaySPIFFE is the identity `waygate run` presents on ISTIO_MUTUAL
// ports when no namespace or service account is given, as the stock
// ingress gateway does.
const gatewaySPIFFE = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"

// meshCA is the mesh CA of a scenario with meshCA: true: the directory
// `waygate run --ca-dir` keeps its root in, and the workload
// certificates `waygate ca` issued from it, as a client or backend in the
// mesh holds them. They are files for the YAML ({{mesh_cert "ns/sa"}},
// {{mesh_key "ns/sa"}}, {{mesh_ca}}) and key pairs for the checks.
type meshCA struct {
	bin string
	// caDir is what --ca-dir names; dir holds the issued certificates,
	// one directory per identity, and the root's copy.
	caDir, dir string

	mu     sync.Mutex
	issued map[string]tls.Certificate
	roots  *x509.CertPool
}

// newMeshCA makes the CA under dir with the real binary, before the
// gateway starts so the two never create a root at once: it issues the
// identities listed, or the gateway's own when there are none.
func newMeshCA(bin, dir string, ids []string) (*meshCA, error) {
	m := &meshCA{bin: bin, caDir: filepath.Join(dir, "ca"), dir: dir, issued: map[string]tls.Certificate{}}
	if len(ids) == 0 {
		ids = []string{"istio-system/istio-ingressgateway-service-account"}
	}
	for _, id := range ids {
		if _, err := m.issue(id); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// issue returns the key pair of id, issuing it with `waygate ca` the
// first time id is asked for.
func (m *meshCA) issue(id string) (tls.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pair, ok := m.issued[id]; ok {
		return pair, nil
	}
	if err := checkIdentity(id); err != nil {
		return tls.Certificate{}, err
	}
	out := m.idDir(id)
	if err := os.MkdirAll(out, 0o700); err != nil {
		return tls.Certificate{}, err
	}
	cmd := exec.Command(m.bin, "ca", "--ca-dir", m.caDir, "--identity", id, "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return tls.Certificate{}, fmt.Errorf("waygate ca --identity %s: %v: %s", id, err, strings.TrimSpace(string(b)))
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(out, "cert-chain.pem"), filepath.Join(out, "key.pem"))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("waygate ca --identity %s: %w", id, err)
	}
	if m.roots == nil {
		root, err := os.ReadFile(filepath.Join(out, "root-cert.pem"))
		if err != nil {
			return tls.Certificate{}, err
		}
		m.roots = x509.NewCertPool()
		if !m.roots.AppendCertsFromPEM(root) {
			return tls.Certificate{}, fmt.Errorf("waygate ca --identity %s: no certificate in root-cert.pem", id)
		}
		if err := os.WriteFile(m.rootFile(), root, 0o644); err != nil {
			return tls.Certificate{}, err
		}
	}
	m.issued[id] = pair
	return pair, nil
}

// idDir is where the files of id are: "default/sleep" in default_sleep.
func (m *meshCA) idDir(id string) string {
	return filepath.Join(m.dir, strings.ReplaceAll(id, "/", "_"))
}

func (m *meshCA) rootFile() string { return filepath.Join(m.dir, "root-cert.pem") }

// file is the path of id's certificate chain or key, issued if need be.
func (m *meshCA) file(id string, key bool) (string, error) {
	if m == nil {
		return "", errNoMeshCA
	}
	if _, err := m.issue(id); err != nil {
		return "", err
	}
	if key {
		return filepath.Join(m.idDir(id), "key.pem"), nil
	}
	return filepath.Join(m.idDir(id), "cert-chain.pem"), nil
}

// root is the path of the mesh root certificate.
func (m *meshCA) root() (string, error) {
	if m == nil {
		return "", errNoMeshCA
	}
	return m.rootFile(), nil
}

var errNoMeshCA = errors.New("no mesh CA: add meshCA: true to scenario.yaml")

// clientTLS speaks Istio mTLS as a sidecar does: it presents id's
// workload certificate (none when id is empty) and checks the gateway's
// chain against the mesh root and its SPIFFE identity, not a host name,
// since a workload certificate names none.
func (m *meshCA) clientTLS(id string) (*tls.Config, error) {
	cfg := &tls.Config{
		InsecureSkipVerify: true, // verified by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the gateway sent no certificate")
			}
			leaf := cs.PeerCertificates[0]
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			m.mu.Lock()
			roots := m.roots
			m.mu.Unlock()
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
				return fmt.Errorf("the gateway's certificate: %w", err)
			}
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != gatewaySPIFFE {
				return fmt.Errorf("the gateway's identity is %v, want %s", leaf.URIs, gatewaySPIFFE)
			}
			return nil
		},
	}
	if id != "" {
		pair, err := m.issue(id)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// checkIdentity accepts NAMESPACE/SERVICE_ACCOUNT, as `waygate ca
// --identity` does.
func checkIdentity(id string) error {
	ns, sa, ok := strings.Cut(id, "/")
	if !ok || ns == "" || sa == "" || strings.ContainsAny(sa, "/ ") || strings.Contains(ns, " ") {
		return fmt.Errorf("mesh identity %q: want NAMESPACE/SERVICE_ACCOUNT, such as default/sleep", id)
	}
	return nil
}

// meshIdentities are the identities the checks of s present, issued
// before the gateway starts.
func (s *Scenario) meshIdentities() []string {
	seen := map[string]bool{}
	var ids []string
	for _, st := range s.Steps {
		for _, c := range st.Checks {
			if r := c.Request; r != nil && r.MeshIdentity != "" && !seen[r.MeshIdentity] {
				seen[r.MeshIdentity] = true
				ids = append(ids, r.MeshIdentity)
			}
		}
	}
	return ids
}
