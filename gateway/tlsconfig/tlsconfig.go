// Package tlsconfig builds crypto/tls configurations from Envoy TLS
// contexts (DownstreamTlsContext, UpstreamTlsContext), with certificates
// inline, from files, or from SDS Secrets.
//
// See https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/transport_sockets/tls/v3/tls.proto
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/waygate/waygate/filters/matcher"
)

// ErrMissingSecret is wrapped by errors about SDS secrets that have not
// arrived yet: a listener waiting for one is warming, not invalid.
var ErrMissingSecret = errors.New("secret is not available yet")

// Secrets resolves SDS secret names. The snapshot's accepted Secrets
// satisfy it.
type Secrets interface {
	Secret(name string) *tlsv3.Secret
}

// Downstream builds the server-side config of a filter chain. Several
// certificates are chosen by SNI, as Envoy does.
func Downstream(ctx *tlsv3.DownstreamTlsContext, secrets Secrets) (*tls.Config, error) {
	common := ctx.GetCommonTlsContext()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
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
		s := secrets.Secret(sc.GetName())
		if s == nil || s.GetTlsCertificate() == nil {
			return nil, fmt.Errorf("common_tls_context.tls_certificate_sds_secret_configs[%d]: secret %q: %w", i, sc.GetName(), ErrMissingSecret)
		}
		cert, err := certificate(s.GetTlsCertificate())
		if err != nil {
			return nil, fmt.Errorf("secret %q: %w", sc.GetName(), err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	if len(cfg.Certificates) == 0 {
		return nil, fmt.Errorf("common_tls_context: at least one certificate is required")
	}
	cfg.NextProtos = append([]string(nil), common.GetAlpnProtocols()...)

	vc, err := validation(common, secrets)
	if err != nil {
		return nil, err
	}
	require := ctx.GetRequireClientCertificate().GetValue()
	switch {
	case vc != nil && require:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = vc.roots
	case vc != nil:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		cfg.ClientCAs = vc.roots
	case require:
		return nil, fmt.Errorf("require_client_certificate: needs a validation context with trusted_ca")
	}
	if vc != nil && len(vc.sans) > 0 {
		cfg.VerifyPeerCertificate = vc.verifySAN
	}
	return cfg, nil
}

// SecretNames lists the SDS names a downstream context refers to, for
// the SDS subscription.
func SecretNames(ctx *tlsv3.CommonTlsContext) []string {
	var out []string
	for _, sc := range ctx.GetTlsCertificateSdsSecretConfigs() {
		out = append(out, sc.GetName())
	}
	if sc := ctx.GetValidationContextSdsSecretConfig(); sc != nil {
		out = append(out, sc.GetName())
	}
	if cv := ctx.GetCombinedValidationContext(); cv != nil && cv.GetValidationContextSdsSecretConfig() != nil {
		out = append(out, cv.GetValidationContextSdsSecretConfig().GetName())
	}
	return out
}

func certificate(c *tlsv3.TlsCertificate) (tls.Certificate, error) {
	chain, err := Read(c.GetCertificateChain())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate_chain: %w", err)
	}
	key, err := Read(c.GetPrivateKey())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("private_key: %w", err)
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return cert, nil
}

// Read returns the bytes of a DataSource.
func Read(ds *corev3.DataSource) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case *corev3.DataSource_Filename:
		return os.ReadFile(s.Filename)
	case *corev3.DataSource_EnvironmentVariable:
		v, ok := os.LookupEnv(s.EnvironmentVariable)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", s.EnvironmentVariable)
		}
		return []byte(v), nil
	}
	return nil, fmt.Errorf("a data source is required")
}

var versions = map[tlsv3.TlsParameters_TlsProtocol]uint16{
	tlsv3.TlsParameters_TLSv1_0: tls.VersionTLS10,
	tlsv3.TlsParameters_TLSv1_1: tls.VersionTLS11,
	tlsv3.TlsParameters_TLSv1_2: tls.VersionTLS12,
	tlsv3.TlsParameters_TLSv1_3: tls.VersionTLS13,
}

func params(cfg *tls.Config, p *tlsv3.TlsParameters) error {
	if p == nil {
		return nil
	}
	if v := p.GetTlsMinimumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
		cfg.MinVersion = versions[v]
	}
	if v := p.GetTlsMaximumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
		cfg.MaxVersion = versions[v]
	}
	if cfg.MaxVersion != 0 && cfg.MinVersion > cfg.MaxVersion {
		return fmt.Errorf("tls_minimum_protocol_version is above tls_maximum_protocol_version")
	}
	if len(p.GetCipherSuites()) > 0 {
		byName := map[string]uint16{}
		for _, s := range tls.CipherSuites() {
			byName[s.Name] = s.ID
		}
		for _, n := range p.GetCipherSuites() {
			id, ok := byName[opensslToGo[n]]
			if !ok {
				id, ok = byName[n]
			}
			if !ok {
				return fmt.Errorf("cipher_suites: %q is not a supported cipher suite", n)
			}
			cfg.CipherSuites = append(cfg.CipherSuites, id)
		}
	}
	return nil
}

// opensslToGo maps the BoringSSL names Envoy configs use to Go's.
var opensslToGo = map[string]string{
	"ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-RSA-CHACHA20-POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-ECDSA-AES128-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
	"ECDHE-RSA-AES128-SHA":          "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
	"ECDHE-ECDSA-AES256-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
	"ECDHE-RSA-AES256-SHA":          "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
	"AES128-GCM-SHA256":             "TLS_RSA_WITH_AES_128_GCM_SHA256",
	"AES256-GCM-SHA384":             "TLS_RSA_WITH_AES_256_GCM_SHA384",
	"AES128-SHA":                    "TLS_RSA_WITH_AES_128_CBC_SHA",
	"AES256-SHA":                    "TLS_RSA_WITH_AES_256_CBC_SHA",
}

// validator checks peer certificates against a validation context.
type validator struct {
	roots *x509.CertPool
	sans  []sanMatcher
}

// sanMatcher matches subject alternative names of one type, or of any
// type for the untyped match_subject_alt_names.
type sanMatcher struct {
	typ tlsv3.SubjectAltNameMatcher_SanType // SAN_TYPE_UNSPECIFIED: any
	m   matcher.String
}

// san is one subject alternative name of a certificate.
type san struct {
	typ  tlsv3.SubjectAltNameMatcher_SanType
	name string
}

func validation(common *tlsv3.CommonTlsContext, secrets Secrets) (*validator, error) {
	var vc *tlsv3.CertificateValidationContext
	switch t := common.GetValidationContextType().(type) {
	case nil:
		return nil, nil
	case *tlsv3.CommonTlsContext_ValidationContext:
		vc = t.ValidationContext
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		s := secrets.Secret(t.ValidationContextSdsSecretConfig.GetName())
		if s == nil || s.GetValidationContext() == nil {
			return nil, fmt.Errorf("common_tls_context.validation_context_sds_secret_config: secret %q: %w", t.ValidationContextSdsSecretConfig.GetName(), ErrMissingSecret)
		}
		vc = s.GetValidationContext()
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		vc = t.CombinedValidationContext.GetDefaultValidationContext()
		if sc := t.CombinedValidationContext.GetValidationContextSdsSecretConfig(); sc != nil {
			s := secrets.Secret(sc.GetName())
			if s == nil || s.GetValidationContext() == nil {
				return nil, fmt.Errorf("common_tls_context.combined_validation_context.validation_context_sds_secret_config: secret %q: %w", sc.GetName(), ErrMissingSecret)
			}
			merged := &tlsv3.CertificateValidationContext{}
			merged.TrustedCa = s.GetValidationContext().GetTrustedCa()
			if vc != nil {
				merged.MatchSubjectAltNames = vc.GetMatchSubjectAltNames()
				merged.MatchTypedSubjectAltNames = vc.GetMatchTypedSubjectAltNames()
			}
			vc = merged
		}
	default:
		return nil, fmt.Errorf("common_tls_context: validation context type %T is not supported", t)
	}
	if vc == nil || vc.GetTrustedCa() == nil {
		return nil, nil
	}
	pem, err := Read(vc.GetTrustedCa())
	if err != nil {
		return nil, fmt.Errorf("validation_context.trusted_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("validation_context.trusted_ca: no PEM certificate found")
	}
	v := &validator{roots: pool}
	for i, m := range vc.GetMatchSubjectAltNames() {
		f, err := matcher.CompileString(m)
		if err != nil {
			return nil, fmt.Errorf("validation_context.match_subject_alt_names[%d]: %w", i, err)
		}
		v.sans = append(v.sans, sanMatcher{m: f})
	}
	for i, m := range vc.GetMatchTypedSubjectAltNames() {
		switch m.GetSanType() {
		case tlsv3.SubjectAltNameMatcher_EMAIL, tlsv3.SubjectAltNameMatcher_DNS,
			tlsv3.SubjectAltNameMatcher_URI, tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
		default:
			return nil, fmt.Errorf("validation_context.match_typed_subject_alt_names[%d].san_type: %v is not supported; use EMAIL, DNS, URI or IP_ADDRESS", i, m.GetSanType())
		}
		f, err := matcher.CompileString(m.GetMatcher())
		if err != nil {
			return nil, fmt.Errorf("validation_context.match_typed_subject_alt_names[%d].matcher: %w", i, err)
		}
		// A typed matcher looks at SANs of its type only: a DNS name
		// must not pass for the SPIFFE URI a policy asks for.
		v.sans = append(v.sans, sanMatcher{typ: m.GetSanType(), m: f})
	}
	return v, nil
}

// verifySAN accepts a verified chain whose leaf has a SAN (DNS, URI,
// email or IP) matching any matcher. crypto/tls calls it even when the
// client sent no certificate; whether one is required is ClientAuth's
// decision, so no certificate passes here, as in Envoy, where SAN
// matching applies to presented certificates only.
func (v *validator) verifySAN(raw [][]byte, chains [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return nil
	}
	if len(chains) == 0 || len(chains[0]) == 0 {
		return fmt.Errorf("no verified peer certificate")
	}
	leaf := chains[0][0]
	var sans []san
	var names []string
	add := func(typ tlsv3.SubjectAltNameMatcher_SanType, n string) {
		sans = append(sans, san{typ, n})
		names = append(names, n)
	}
	for _, n := range leaf.DNSNames {
		add(tlsv3.SubjectAltNameMatcher_DNS, n)
	}
	for _, n := range leaf.EmailAddresses {
		add(tlsv3.SubjectAltNameMatcher_EMAIL, n)
	}
	for _, u := range leaf.URIs {
		add(tlsv3.SubjectAltNameMatcher_URI, u.String())
	}
	for _, ip := range leaf.IPAddresses {
		add(tlsv3.SubjectAltNameMatcher_IP_ADDRESS, ip.String())
	}
	for _, n := range sans {
		for i := range v.sans {
			m := &v.sans[i]
			if (m.typ == tlsv3.SubjectAltNameMatcher_SAN_TYPE_UNSPECIFIED || m.typ == n.typ) && m.m.Match(n.name) {
				return nil
			}
		}
	}
	return fmt.Errorf("peer certificate SANs %v match no allowed name", names)
}
