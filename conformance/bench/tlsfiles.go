package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles is the one certificate every target serves in the TLS
// scenario: ECDSA P-256, the usual choice of a gateway, self-signed for
// 127.0.0.1 (the load tools do not verify it). Combined is the
// certificate and key in one file, as HAProxy reads them.
type TLSFiles struct {
	Cert, Key, Combined string
}

// NewTLSFiles writes a fresh certificate into dir.
func NewTLSFiles(dir string) (*TLSFiles, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bench.waygate.dev"},
		DNSNames:     []string{"bench.waygate.dev"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	f := &TLSFiles{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), Combined: filepath.Join(dir, "combined.pem")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for path, b := range map[string][]byte{f.Cert: certPEM, f.Key: keyPEM, f.Combined: append(append([]byte{}, certPEM...), keyPEM...)} {
		// nginx workers (nobody) never read these: the master loads
		// them; 0644 keeps the harness simple on a loopback-only key.
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return nil, err
		}
	}
	return f, nil
}
