package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type keyPair struct {
	cert, key []byte
	x509      *x509.Certificate
	priv      *ecdsa.PrivateKey
}

// issue makes an ECDSA certificate for sans (URIs when they have a
// scheme, IPs when they parse as one, emails with an @, else DNS names),
// signed by ca, or self-signed as a CA when ca is nil.
func issue(t testing.TB, ca *keyPair, cn string, sans ...string) keyPair {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if strings.Contains(s, "@") {
			tmpl.EmailAddresses = append(tmpl.EmailAddresses, s)
		} else if u, err := url.Parse(s); err == nil && u.Scheme != "" {
			tmpl.URIs = append(tmpl.URIs, u)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	parent, signer := tmpl, priv
	if ca == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		parent, signer = ca.x509, ca.priv
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &priv.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(priv)
	return keyPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		x509: cert,
		priv: priv,
	}
}

func inline(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: string(b)}}
}

func (k keyPair) tlsCertificate() *tlsv3.TlsCertificate {
	return &tlsv3.TlsCertificate{CertificateChain: inline(k.cert), PrivateKey: inline(k.key)}
}

type secrets map[string]*tlsv3.Secret

func (s secrets) Secret(name string) *tlsv3.Secret { return s[name] }

func TestDownstream(t *testing.T) {
	ca := issue(t, nil, "CA")
	server := issue(t, &ca, "server", "gw.example.com")
	sds := func(name string) []*tlsv3.SdsSecretConfig { return []*tlsv3.SdsSecretConfig{{Name: name}} }
	withCert := func(edit func(*tlsv3.DownstreamTlsContext)) *tlsv3.DownstreamTlsContext {
		ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificates: []*tlsv3.TlsCertificate{server.tlsCertificate()},
		}}
		if edit != nil {
			edit(ctx)
		}
		return ctx
	}
	store := secrets{
		"cert": {Name: "cert", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: server.tlsCertificate()}},
		"ca":   {Name: "ca", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline(ca.cert)}}},
	}
	tests := []struct {
		name    string
		ctx     *tlsv3.DownstreamTlsContext
		err     string
		missing bool // the error wraps ErrMissingSecret
		check   func(*testing.T, *tls.Config)
	}{
		{name: "inline certificate", ctx: withCert(nil), check: func(t *testing.T, c *tls.Config) {
			if len(c.Certificates) != 1 || c.MinVersion != tls.VersionTLS12 || c.ClientAuth != tls.NoClientCert {
				t.Errorf("certs %d min %x auth %v", len(c.Certificates), c.MinVersion, c.ClientAuth)
			}
		}},
		{name: "SDS certificate", ctx: &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsCertificateSdsSecretConfigs: sds("cert")}}},
		{name: "SDS certificate not arrived", ctx: &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsCertificateSdsSecretConfigs: sds("later")}},
			err: `tls_certificate_sds_secret_configs[0]: secret "later"`, missing: true},
		{name: "SDS validation context not arrived", ctx: withCert(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "later"}}
		}), err: `validation_context_sds_secret_config: secret "later"`, missing: true},
		{name: "SDS validation context", ctx: withCert(func(c *tlsv3.DownstreamTlsContext) {
			c.RequireClientCertificate = wrapperspb.Bool(true)
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "ca"}}
		}), check: func(t *testing.T, c *tls.Config) {
			if c.ClientAuth != tls.RequireAndVerifyClientCert || c.ClientCAs == nil {
				t.Errorf("client auth %v", c.ClientAuth)
			}
		}},
		{name: "no certificate", ctx: &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{}}, err: "at least one certificate is required"},
		{name: "certificate and key do not match", ctx: &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificates: []*tlsv3.TlsCertificate{{CertificateChain: inline(server.cert), PrivateKey: inline(ca.key)}},
		}}, err: "tls_certificates[0]"},
		{name: "client certificate required without a CA", ctx: withCert(func(c *tlsv3.DownstreamTlsContext) {
			c.RequireClientCertificate = wrapperspb.Bool(true)
		}), err: "require_client_certificate: needs a validation context with trusted_ca"},
		{name: "trusted CA without PEM", ctx: withCert(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline([]byte("nope"))}}
		}), err: "validation_context.trusted_ca: no PEM certificate found"},
		{name: "OTHER_NAME SANs", ctx: withCert(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: inline(ca.cert),
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: tlsv3.SubjectAltNameMatcher_OTHER_NAME,
					Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "x"}},
				}},
			}}
		}), err: "match_typed_subject_alt_names[0].san_type"},
		{name: "protocol versions and OpenSSL cipher names", ctx: withCert(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{
				TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
				TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
				CipherSuites:              []string{"ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
			}
			c.CommonTlsContext.AlpnProtocols = []string{"h2", "http/1.1"}
		}), check: func(t *testing.T, c *tls.Config) {
			if c.MinVersion != tls.VersionTLS12 || c.MaxVersion != tls.VersionTLS13 || len(c.CipherSuites) != 2 || strings.Join(c.NextProtos, ",") != "h2,http/1.1" {
				t.Errorf("min %x max %x suites %v alpn %v", c.MinVersion, c.MaxVersion, c.CipherSuites, c.NextProtos)
			}
		}},
		{name: "unknown cipher", ctx: withCert(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{CipherSuites: []string{"NOT-A-CIPHER"}}
		}), err: `cipher_suites: "NOT-A-CIPHER" is not a supported cipher suite`},
		{name: "minimum above maximum", ctx: withCert(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{
				TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
				TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
			}
		}), err: "tls_minimum_protocol_version is above tls_maximum_protocol_version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Downstream(tt.ctx, store)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				if errors.Is(err, ErrMissingSecret) != tt.missing {
					t.Errorf("errors.Is(err, ErrMissingSecret) = %v, want %v", !tt.missing, tt.missing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

// handshake runs a TLS handshake of a client presenting client (if any)
// against server, and returns the server's error.
func handshake(t *testing.T, server *tls.Config, roots *x509.CertPool, client *keyPair) error {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	deadline := time.Now().Add(5 * time.Second)
	c.SetDeadline(deadline)
	s.SetDeadline(deadline)
	cc := &tls.Config{RootCAs: roots, ServerName: "gw.example.com"}
	if client != nil {
		pair, err := tls.X509KeyPair(client.cert, client.key)
		if err != nil {
			t.Fatal(err)
		}
		cc.Certificates = []tls.Certificate{pair}
	}
	go func() {
		tc := tls.Client(c, cc)
		if tc.Handshake() == nil {
			// TLS 1.3 clients finish first; read to take the server's verdict.
			tc.Read(make([]byte, 1))
		}
		c.Close()
	}()
	return tls.Server(s, server).Handshake()
}

func TestClientCertificateSANs(t *testing.T) {
	serverCA := issue(t, nil, "server CA")
	clientCA := issue(t, nil, "client CA")
	server := issue(t, &serverCA, "server", "gw.example.com")
	exact := func(s string) *matcherv3.StringMatcher {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
	}
	prefix := func(s string) *matcherv3.StringMatcher {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: s}}
	}
	typed := func(typ tlsv3.SubjectAltNameMatcher_SanType, m *matcherv3.StringMatcher) *tlsv3.SubjectAltNameMatcher {
		return &tlsv3.SubjectAltNameMatcher{SanType: typ, Matcher: m}
	}
	tests := []struct {
		name    string
		untyped []*matcherv3.StringMatcher
		typed   []*tlsv3.SubjectAltNameMatcher
		sans    []string
		ok      bool
	}{
		{name: "untyped exact URI", untyped: []*matcherv3.StringMatcher{exact("spiffe://td/ns/a/sa/b")}, sans: []string{"spiffe://td/ns/a/sa/b"}, ok: true},
		{name: "untyped matches any type", untyped: []*matcherv3.StringMatcher{prefix("spiffe")}, sans: []string{"spiffe.example.com"}, ok: true},
		{name: "untyped no match", untyped: []*matcherv3.StringMatcher{exact("spiffe://td/ns/a/sa/b")}, sans: []string{"spiffe://td/ns/a/sa/c"}, ok: false},
		{name: "typed URI", typed: []*tlsv3.SubjectAltNameMatcher{typed(tlsv3.SubjectAltNameMatcher_URI, prefix("spiffe://td/"))}, sans: []string{"spiffe://td/ns/a/sa/b"}, ok: true},
		{name: "typed URI ignores DNS names", typed: []*tlsv3.SubjectAltNameMatcher{typed(tlsv3.SubjectAltNameMatcher_URI, prefix("spiffe"))}, sans: []string{"spiffe.example.com"}, ok: false},
		{name: "typed DNS", typed: []*tlsv3.SubjectAltNameMatcher{typed(tlsv3.SubjectAltNameMatcher_DNS, exact("client.example.com"))}, sans: []string{"client.example.com"}, ok: true},
		{name: "typed IP", typed: []*tlsv3.SubjectAltNameMatcher{typed(tlsv3.SubjectAltNameMatcher_IP_ADDRESS, exact("10.1.2.3"))}, sans: []string{"10.1.2.3"}, ok: true},
		{name: "typed email", typed: []*tlsv3.SubjectAltNameMatcher{typed(tlsv3.SubjectAltNameMatcher_EMAIL, exact("ops@example.com"))}, sans: []string{"ops@example.com"}, ok: true},
		{name: "typed DNS ignores emails", typed: []*tlsv3.SubjectAltNameMatcher{typed(tlsv3.SubjectAltNameMatcher_DNS, exact("ops@example.com"))}, sans: []string{"ops@example.com"}, ok: false},
		{name: "any matcher of several", typed: []*tlsv3.SubjectAltNameMatcher{
			typed(tlsv3.SubjectAltNameMatcher_DNS, exact("x.example.com")),
			typed(tlsv3.SubjectAltNameMatcher_URI, exact("spiffe://td/ns/a/sa/b")),
		}, sans: []string{"spiffe://td/ns/a/sa/b"}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Downstream(&tlsv3.DownstreamTlsContext{
				RequireClientCertificate: wrapperspb.Bool(true),
				CommonTlsContext: &tlsv3.CommonTlsContext{
					TlsCertificates: []*tlsv3.TlsCertificate{server.tlsCertificate()},
					ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
						TrustedCa:                 inline(clientCA.cert),
						MatchSubjectAltNames:      tt.untyped,
						MatchTypedSubjectAltNames: tt.typed,
					}},
				},
			}, secrets{})
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(serverCA.x509)
			client := issue(t, &clientCA, "client", tt.sans...)
			err = handshake(t, cfg, roots, &client)
			if (err == nil) != tt.ok {
				t.Errorf("handshake error %v, want ok %v", err, tt.ok)
			}
		})
	}
}
