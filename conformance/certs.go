package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// CertSpec asks the runner for a certificate signed by the scenario's
// own CA: a server certificate for a Gateway's serverCertificate, or a
// client certificate (Client) for checks against a MUTUAL server.
type CertSpec struct {
	Name   string   `yaml:"name"`
	Hosts  []string `yaml:"hosts"`
	Client bool     `yaml:"client"`
}

// pki is a scenario's CA and the certificates made from it, as files the
// Istio YAML names ({{cert "x"}}, {{key "x"}}, {{ca}}) and as key pairs
// the checks present.
type pki struct {
	dir    string
	pool   *x509.CertPool
	caFile string
	pairs  map[string]tls.Certificate
}

// newPKI makes the CA and every certificate of specs under dir.
func newPKI(dir string, specs []CertSpec) (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "waygate conformance CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := &pki{dir: dir, pool: x509.NewCertPool(), caFile: filepath.Join(dir, "ca.pem"), pairs: map[string]tls.Certificate{}}
	p.pool.AddCert(caCert)
	if err := writePEM(p.caFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	for i, s := range specs {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)),
			Subject:      pkix.Name{CommonName: s.Name},
			DNSNames:     s.Hosts,
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		if s.Client {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := writePEM(p.certFile(s.Name), "CERTIFICATE", der); err != nil {
			return nil, err
		}
		if err := writePEM(p.keyFile(s.Name), "PRIVATE KEY", keyDER); err != nil {
			return nil, err
		}
		p.pairs[s.Name] = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	return p, nil
}

func (p *pki) certFile(name string) string { return filepath.Join(p.dir, name+".pem") }
func (p *pki) keyFile(name string) string  { return filepath.Join(p.dir, name+"-key.pem") }

// file returns the path of a named certificate or key for the YAML.
func (p *pki) file(name string, key bool) (string, error) {
	if p == nil {
		return "", fmt.Errorf("no certificates in scenario.yaml")
	}
	if _, ok := p.pairs[name]; !ok {
		return "", fmt.Errorf("no certificate named %q in scenario.yaml", name)
	}
	if key {
		return p.keyFile(name), nil
	}
	return p.certFile(name), nil
}

func writePEM(file, typ string, der []byte) error {
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
