package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// Upstream builds the client-side config of a cluster's TLS transport
// socket: its client certificate (Istio's workload certificate, SDS
// "default"), the SNI and ALPN it sends, and how it verifies the server.
//
// As in Envoy, the server is verified only when a validation context
// names trusted CAs, and then against them and the SAN matchers, never
// against the host name: Istio's secure naming is the SAN check on the
// SPIFFE identity (https://istio.io/latest/docs/concepts/security/#secure-naming).
// See https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/transport_sockets/tls/v3/tls.proto#extensions-transport-sockets-tls-v3-upstreamtlscontext
func Upstream(ctx *tlsv3.UpstreamTlsContext, secrets Secrets) (*tls.Config, error) {
	common := ctx.GetCommonTlsContext()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: ctx.GetSni()}
	if err := params(cfg, common.GetTlsParams()); err != nil {
		return nil, fmt.Errorf("common_tls_context.tls_params: %w", err)
	}
	for i, c := range common.GetTlsCertificates() {
		cert, err := certificate(c)
		if err != nil {
			return nil, fmt.Errorf("common_tls_context.tls_certificates[%d]: %w", i, err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	for i, sc := range common.GetTlsCertificateSdsSecretConfigs() {
		s := secretOf(secrets, sc.GetName())
		if s == nil || s.GetTlsCertificate() == nil {
			return nil, fmt.Errorf("common_tls_context.tls_certificate_sds_secret_configs[%d]: secret %q: %w", i, sc.GetName(), ErrMissingSecret)
		}
		cert, err := certificate(s.GetTlsCertificate())
		if err != nil {
			return nil, fmt.Errorf("secret %q: %w", sc.GetName(), err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	if len(cfg.Certificates) > 1 {
		return nil, fmt.Errorf("common_tls_context: an upstream context takes one client certificate, got %d", len(cfg.Certificates))
	}
	cfg.NextProtos = append([]string(nil), common.GetAlpnProtocols()...)

	vc, err := validation(common, nilSafe{secrets})
	if err != nil {
		return nil, err
	}
	// crypto/tls would check the host name; Envoy does not, so the
	// chain and SANs are checked here instead.
	cfg.InsecureSkipVerify = true
	if vc != nil {
		cfg.VerifyConnection = vc.verifyServer
	}
	return cfg, nil
}

// verifyServer checks the server's chain against the trusted CAs, then
// its SANs when matchers are set.
func (v *validator) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	chains, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return err
	}
	if len(v.sans) == 0 {
		return nil
	}
	raw := make([][]byte, len(cs.PeerCertificates))
	for i, c := range cs.PeerCertificates {
		raw[i] = c.Raw
	}
	return v.verifySAN(raw, chains)
}

// nilSafe lets a nil Secrets resolve nothing.
type nilSafe struct{ s Secrets }

func (n nilSafe) Secret(name string) *tlsv3.Secret { return secretOf(n.s, name) }

func secretOf(s Secrets, name string) *tlsv3.Secret {
	if s == nil {
		return nil
	}
	return s.Secret(name)
}
