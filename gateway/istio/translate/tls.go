package translate

import (
	"os"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/api/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

const tlsTransportSocket = "envoy.transport_sockets.tls"

// sdsSecret references a secret delivered over the ADS stream.
func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}}
}

// downstreamTLS builds the TLS context of a gateway server that
// terminates TLS, as istiod's BuildListenerTLSContext
// (https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings):
// credentialName is the SDS secret "kubernetes://<name>" (and
// "kubernetes://<name>-cacert" for MUTUAL); certificate files become
// the SDS secrets "file-cert:<cert>~<key>" and "file-root:<ca>", which
// this translator fills from the files. alpn lists the protocols offered.
func (t *translator) downstreamTLS(gs *gatewayServer, alpn []string) (*tlsv3.DownstreamTlsContext, []*tlsv3.Secret) {
	s := gs.server.Tls
	common := &tlsv3.CommonTlsContext{AlpnProtocols: alpn}
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
	var secrets []*tlsv3.Secret
	mutual := s.Mode == v1alpha3.ServerTLSSettings_MUTUAL || s.Mode == v1alpha3.ServerTLSSettings_OPTIONAL_MUTUAL
	if s.Mode == v1alpha3.ServerTLSSettings_MUTUAL {
		ctx.RequireClientCertificate = wrapperspb.Bool(true)
	} else {
		ctx.RequireClientCertificate = wrapperspb.Bool(false)
	}

	var validation *tlsv3.CertificateValidationContext
	if len(s.SubjectAltNames) > 0 || len(s.VerifyCertificateSpki) > 0 || len(s.VerifyCertificateHash) > 0 {
		validation = &tlsv3.CertificateValidationContext{
			VerifyCertificateSpki: s.VerifyCertificateSpki,
			VerifyCertificateHash: s.VerifyCertificateHash,
		}
		for _, san := range s.SubjectAltNames {
			validation.MatchSubjectAltNames = append(validation.MatchSubjectAltNames,
				&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: san}})
		}
	}

	switch {
	case s.Mode == v1alpha3.ServerTLSSettings_ISTIO_MUTUAL:
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsSecret("default")}
		common.ValidationContextType = combinedValidation(validation, "ROOTCA")
		ctx.RequireClientCertificate = wrapperspb.Bool(true)
	case s.CredentialName != "":
		name := "kubernetes://" + s.CredentialName
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsSecret(name)}
		if mutual {
			common.ValidationContextType = combinedValidation(validation, name+"-cacert")
		}
		t.warn(gs.gateway, gs.field+".tls.credentialName",
			"secret %q is not served by this control plane; the data plane must get it from another SDS source", name)
	default:
		certName := "file-cert:" + s.ServerCertificate + "~" + s.PrivateKey
		if sec := t.readCertificate(gs.gateway, gs.field+".tls", certName, s.ServerCertificate, s.PrivateKey); sec != nil {
			secrets = append(secrets, sec)
		}
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsSecret(certName)}
		if mutual {
			rootName := "file-root:" + s.CaCertificates
			if sec := t.readRoot(gs.gateway, gs.field+".tls", rootName, s.CaCertificates, s.CaCrl); sec != nil {
				secrets = append(secrets, sec)
			}
			common.ValidationContextType = combinedValidation(validation, rootName)
		}
	}

	if s.MinProtocolVersion != v1alpha3.ServerTLSSettings_TLS_AUTO || s.MaxProtocolVersion != v1alpha3.ServerTLSSettings_TLS_AUTO || len(s.CipherSuites) > 0 {
		common.TlsParams = &tlsv3.TlsParameters{
			TlsMinimumProtocolVersion: tlsv3.TlsParameters_TlsProtocol(s.MinProtocolVersion),
			TlsMaximumProtocolVersion: tlsv3.TlsParameters_TlsProtocol(s.MaxProtocolVersion),
			CipherSuites:              s.CipherSuites,
		}
	}
	return ctx, secrets
}

func combinedValidation(defaults *tlsv3.CertificateValidationContext, sdsName string) *tlsv3.CommonTlsContext_CombinedValidationContext {
	if defaults == nil {
		defaults = &tlsv3.CertificateValidationContext{}
	}
	return &tlsv3.CommonTlsContext_CombinedValidationContext{
		CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         defaults,
			ValidationContextSdsSecretConfig: sdsSecret(sdsName),
		},
	}
}

// readCertificate reads a certificate and key into an SDS secret, so the
// data plane needs no access to the control plane's files.
func (t *translator) readCertificate(res istio.Key, field, name, certFile, keyFile string) *tlsv3.Secret {
	cert, err := os.ReadFile(certFile)
	if err != nil {
		t.warn(res, field, "certificate: %v", err)
		return nil
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.warn(res, field, "private key: %v", err)
		return nil
	}
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inlineBytes(cert),
		PrivateKey:       inlineBytes(key),
	}}}
}

// readRoot reads the CA certificates (and CRL) that verify peer
// certificates into an SDS validation-context secret.
func (t *translator) readRoot(res istio.Key, field, name, caFile, crlFile string) *tlsv3.Secret {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.warn(res, field+".caCertificates", "%v", err)
		return nil
	}
	vc := &tlsv3.CertificateValidationContext{TrustedCa: inlineBytes(ca)}
	if crlFile != "" {
		crl, err := os.ReadFile(crlFile)
		if err != nil {
			t.warn(res, field+".caCrl", "%v", err)
		} else {
			vc.Crl = inlineBytes(crl)
		}
	}
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: vc}}
}

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}
