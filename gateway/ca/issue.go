package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DefaultLifetime is the lifetime of workload certificates, Istio's
// default (DEFAULT_WORKLOAD_CERT_TTL, 24h).
const DefaultLifetime = 24 * time.Hour

// Identity is a workload's identity: its namespace and service account.
type Identity struct {
	Namespace      string
	ServiceAccount string
}

// GatewayIdentity is who the stock ingress gateway runs as, the default
// for a proxy whose node metadata names no service account.
var GatewayIdentity = Identity{Namespace: "istio-system", ServiceAccount: "istio-ingressgateway-service-account"}

// SPIFFEID is the identity's URI in trust domain td, as Istio writes it:
// spiffe://<td>/ns/<namespace>/sa/<service account>.
func (id Identity) SPIFFEID(td string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: td, Path: "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount}
}

func (id Identity) String() string { return id.Namespace + "/" + id.ServiceAccount }

func (id Identity) validate() error {
	for _, f := range []struct{ name, v string }{{"namespace", id.Namespace}, {"service account", id.ServiceAccount}} {
		if f.v == "" {
			return fmt.Errorf("identity %s: the %s is empty", id, f.name)
		}
		if strings.ContainsAny(f.v, "/ ") {
			return fmt.Errorf("identity %s: the %s %q has a slash or a space", id, f.name, f.v)
		}
	}
	return nil
}

// Certificate is an issued workload certificate.
type Certificate struct {
	Identity Identity
	// ChainPEM is the leaf then the root, as Istio's agent serves the
	// chain; KeyPEM its PKCS#8 private key.
	ChainPEM, KeyPEM []byte
	NotBefore        time.Time
	NotAfter         time.Time
	// issued is when it was signed: NotBefore is backdated.
	issued time.Time
}

// TLS is the certificate for crypto/tls.
func (c *Certificate) TLS() (tls.Certificate, error) { return tls.X509KeyPair(c.ChainPEM, c.KeyPEM) }

// renewAt is halfway from its signing to its expiry, when Istio's agent
// renews.
func (c *Certificate) renewAt() time.Time {
	return c.issued.Add(c.NotAfter.Sub(c.issued) / 2)
}

// Issue signs a fresh key for id, valid for lifetime (DefaultLifetime
// when 0). Like an Istio workload certificate it has no subject, only
// the SPIFFE URI SAN, and serves both as client and server certificate.
func (c *CA) Issue(id Identity, lifetime time.Duration) (*Certificate, error) {
	if err := id.validate(); err != nil {
		return nil, err
	}
	if lifetime <= 0 {
		lifetime = DefaultLifetime
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now().Truncate(time.Second)
	// Backdated a little, for peers whose clocks run behind.
	notBefore := now.Add(-time.Minute)
	notAfter := now.Add(lifetime)
	if ca := c.cert.NotAfter; notAfter.After(ca) {
		notAfter = ca
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id.SPIFFEID(c.TrustDomain)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", id, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	chain := append(pemBlock("CERTIFICATE", der), c.certPEM...)
	return &Certificate{
		Identity:  id,
		ChainPEM:  chain,
		KeyPEM:    pemBlock("PRIVATE KEY", keyDER),
		NotBefore: notBefore,
		NotAfter:  notAfter,
		issued:    now,
	}, nil
}
