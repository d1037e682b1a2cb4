package translate

import (
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"istio.io/api/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

// Istio's workload certificate and root, as the proxy's SDS server names
// them (https://istio.io/latest/docs/concepts/security/#pki).
const (
	workloadCertSecret = "default"
	rootCASecret       = "ROOTCA"
	// systemTrustStore verifies upstream certificates when a SIMPLE TLS
	// DestinationRule names no CA, as istiod defaults to the OS roots.
	systemTrustStore = "/etc/ssl/certs/ca-certificates.crt"
)

// istioSDS references a secret of the proxy's local SDS server
// (cluster "sds-grpc"), as istiod does for Istio mTLS.
func istioSDS(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: &corev3.ApiConfigSource{
			ApiType:             corev3.ApiConfigSource_GRPC,
			TransportApiVersion: corev3.ApiVersion_V3,
			GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "sds-grpc"},
			}}},
			SetNodeOnFirstMessageOnly: true,
		}},
		InitialFetchTimeout: durationpb.New(0),
		ResourceApiVersion:  corev3.ApiVersion_V3,
	}}
}

// istioMutualContext is the client side of Istio mTLS: the workload
// certificate, the mesh root, and the ALPN and SNI istiod sets
// (outbound_.<port>_.<subset>_.<host>). sans are the identities the
// server may present (secure naming): istiod's match_subject_alt_names,
// none meaning any certificate from the mesh root.
func istioMutualContext(sni string, sans []string) *tlsv3.UpstreamTlsContext {
	validation := &tlsv3.CertificateValidationContext{}
	for _, san := range sans {
		//nolint:staticcheck // the field istiod sets.
		validation.MatchSubjectAltNames = append(validation.MatchSubjectAltNames,
			&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: san}})
	}
	return &tlsv3.UpstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams: &tlsv3.TlsParameters{
				TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
				TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
			},
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{istioSDS(workloadCertSecret)},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext:         validation,
					ValidationContextSdsSecretConfig: istioSDS(rootCASecret),
				},
			},
			AlpnProtocols: []string{"istio-peer-exchange", "istio"},
		},
		Sni: sni,
	}
}

func upstreamSocket(ctx *tlsv3.UpstreamTlsContext) *corev3.TransportSocket {
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}

// applyUpstreamTLS sets how the gateway connects to the cluster's
// endpoints (https://istio.io/latest/docs/reference/config/networking/destination-rule/#ClientTLSSettings).
// Without a tls block, a service inside the mesh gets istiod's auto mTLS:
// Istio mTLS to endpoints whose metadata says tlsMode "istio", plain
// text to the others.
func (t *translator) applyUpstreamTLS(c *clusterv3.Cluster, svc *service, port servicePort, subset string,
	tls *v1alpha3.ClientTLSSettings, dr *destinationRule,
) {
	sni := "outbound_." + strconv.Itoa(int(port.number)) + "_." + subset + "_." + svc.hostname
	if tls == nil {
		if svc.external {
			return
		}
		c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{
			{
				Name: "tlsMode-istio",
				Match: &structpb.Struct{Fields: map[string]*structpb.Value{
					"tlsMode": structpb.NewStringValue("istio"),
				}},
				TransportSocket: upstreamSocket(istioMutualContext(sni, svc.serviceAccounts)),
			},
			{
				Name:  "tlsMode-disabled",
				Match: &structpb.Struct{},
				TransportSocket: &corev3.TransportSocket{
					Name:       "envoy.transport_sockets.raw_buffer",
					ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&rawbufferv3.RawBuffer{})},
				},
			},
		}
		return
	}
	key := istio.Key{}
	if dr != nil {
		key = dr.key
	}
	switch tls.Mode {
	case v1alpha3.ClientTLSSettings_DISABLE:
		return
	case v1alpha3.ClientTLSSettings_ISTIO_MUTUAL:
		if tls.Sni != "" {
			sni = tls.Sni
		}
		sans := svc.serviceAccounts
		if len(tls.SubjectAltNames) > 0 {
			sans = tls.SubjectAltNames
		}
		c.TransportSocket = upstreamSocket(istioMutualContext(sni, sans))
		return
	}

	ctx := &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{}, Sni: tls.Sni}
	common := ctx.CommonTlsContext
	mutual := tls.Mode == v1alpha3.ClientTLSSettings_MUTUAL
	var validation *tlsv3.CertificateValidationContext
	if !tls.GetInsecureSkipVerify().GetValue() {
		validation = &tlsv3.CertificateValidationContext{}
		for _, san := range tls.SubjectAltNames {
			//nolint:staticcheck // the field istiod sets.
			validation.MatchSubjectAltNames = append(validation.MatchSubjectAltNames,
				&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: san}})
		}
	}
	switch {
	case tls.CredentialName != "":
		name := "kubernetes://" + tls.CredentialName
		if mutual {
			common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsSecret(name)}
		}
		if validation != nil {
			common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext:         validation,
					ValidationContextSdsSecretConfig: sdsSecret(name + "-cacert"),
				},
			}
		}
		t.warn(key, "spec.trafficPolicy.tls.credentialName",
			"secret %q is not served by this control plane; the data plane must get it from another SDS source", name)
	default:
		if mutual {
			name := "file-cert:" + tls.ClientCertificate + "~" + tls.PrivateKey
			if s := t.readCertificate(key, "spec.trafficPolicy.tls", name, tls.ClientCertificate, tls.PrivateKey); s != nil {
				t.secrets = append(t.secrets, s)
			}
			common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsSecret(name)}
		}
		if validation != nil {
			if tls.CaCertificates != "" {
				name := "file-root:" + tls.CaCertificates
				if s := t.readRoot(key, "spec.trafficPolicy.tls", name, tls.CaCertificates, tls.CaCrl); s != nil {
					t.secrets = append(t.secrets, s)
				}
				common.ValidationContextType = combinedValidation(validation, name)
			} else {
				validation.TrustedCa = &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: systemTrustStore}}
				common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: validation}
			}
		}
	}
	c.TransportSocket = upstreamSocket(ctx)
}

// spiffeID is the identity of service account sa in namespace ns, as
// Istio writes it: spiffe://<trust domain>/ns/<ns>/sa/<sa>.
func (t *translator) spiffeID(ns, sa string) string {
	return "spiffe://" + t.proxy.TrustDomain + "/ns/" + ns + "/sa/" + sa
}
