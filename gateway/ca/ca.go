package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// DefaultTrustDomain is Istio's default meshConfig.trustDomain.
const DefaultTrustDomain = "cluster.local"

// File names in a CA directory: those of the istio-ca-secret istiod
// keeps its self-signed root in, so an operator recognizes them.
const (
	CertFile = "ca-cert.pem"
	KeyFile  = "ca-key.pem"
)

// rootLifetime is istiod's default self-signed root lifetime
// (CITADEL_SELF_SIGNED_CA_CERT_TTL, ten years).
const rootLifetime = 10 * 365 * 24 * time.Hour

// CA is a root certificate and its key. It is safe for concurrent use:
// it never changes once made.
type CA struct {
	// TrustDomain is the first part of the SPIFFE identities it issues.
	TrustDomain string

	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// New makes a CA with a fresh root kept in memory only.
func New(trustDomain string) (*CA, error) {
	if trustDomain == "" {
		trustDomain = DefaultTrustDomain
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{trustDomain}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(rootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{TrustDomain: trustDomain, cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der)}, nil
}

// Open loads the CA kept in dir, or makes one and writes it there when
// dir holds none, so a restarted control plane keeps its root and the
// certificates it issued stay valid. The key file is written 0600.
func Open(dir, trustDomain string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		c, err := New(trustDomain)
		if err != nil {
			return nil, err
		}
		if err := c.write(dir); err != nil {
			return nil, err
		}
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	c, err := Parse(certPEM, keyPEM, trustDomain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return c, nil
}

// Parse reads a root certificate and its private key from PEM.
func Parse(certPEM, keyPEM []byte, trustDomain string) (*CA, error) {
	if trustDomain == "" {
		trustDomain = DefaultTrustDomain
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", CertFile)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CertFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", CertFile)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("%s: no PEM private key", KeyFile)
	}
	key, err := parseKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyFile, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not match the key of %s", KeyFile, CertFile)
	}
	return &CA{TrustDomain: trustDomain, cert: cert, key: key, certPEM: pem.EncodeToMemory(b)}, nil
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("the private key is not PKCS#8, EC or PKCS#1")
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func (c *CA) write(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), pemBlock("PRIVATE KEY", der), 0o600); err != nil {
		return err
	}
	// The certificate last: its presence says the directory is complete.
	return os.WriteFile(filepath.Join(dir, CertFile), c.certPEM, 0o644)
}

// RootPEM is the root certificate, what proxies trust as ROOTCA.
func (c *CA) RootPEM() []byte { return c.certPEM }

// Root is the parsed root certificate.
func (c *CA) Root() *x509.Certificate { return c.cert }

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}
