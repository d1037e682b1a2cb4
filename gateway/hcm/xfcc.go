package hcm

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"strings"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// The x-forwarded-client-cert header (XFCC), as the connection manager's
// forward_client_cert_details and set_current_client_cert_details make
// it: what a backend learns of the client certificate the gateway
// verified. Unless the mode says to forward it, a client's own XFCC is
// removed, so that nobody outside can claim an identity to a backend
// that trusts the header; an Istio gateway uses SANITIZE_SET, which
// replaces it with the verified certificate's details on mutual TLS.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert
const xfccHeader = "X-Forwarded-Client-Cert"

// xfcc is a compiled XFCC policy.
type xfcc struct {
	mode hcmv3.HttpConnectionManager_ForwardClientCertDetails
	// The details set_current_client_cert_details adds; By and Hash
	// are always there.
	subject, cert, chain, dns, uri bool
}

func compileXFCC(m *hcmv3.HttpConnectionManager) xfcc {
	d := m.GetSetCurrentClientCertDetails()
	return xfcc{
		mode:    m.GetForwardClientCertDetails(),
		subject: d.GetSubject().GetValue(),
		cert:    d.GetCert(),
		chain:   d.GetChain(),
		dns:     d.GetDns(),
		uri:     d.GetUri(),
	}
}

// apply rewrites h's XFCC for a request that came over a connection in
// state st (nil for plain text); localURIs are the URI SANs of the
// certificate the gateway presented.
func (x xfcc) apply(h http.Header, st *tls.ConnectionState, localURIs []string) {
	if x.mode == hcmv3.HttpConnectionManager_ALWAYS_FORWARD_ONLY {
		return
	}
	mutual := st != nil && len(st.PeerCertificates) > 0
	if x.mode == hcmv3.HttpConnectionManager_SANITIZE || !mutual {
		delete(h, xfccHeader)
		return
	}
	if x.mode == hcmv3.HttpConnectionManager_FORWARD_ONLY {
		return
	}
	details := x.details(st.PeerCertificates, localURIs)
	if x.mode == hcmv3.HttpConnectionManager_APPEND_FORWARD {
		if prior := h[xfccHeader]; len(prior) > 0 {
			h[xfccHeader] = []string{strings.Join(prior, ",") + "," + details}
			return
		}
	}
	h[xfccHeader] = []string{details}
}

// details is one XFCC element for the client's certificate chain:
// By (the gateway's URI SANs), Hash (the SHA-256 of the client
// certificate), then Cert, Chain, Subject, URI and DNS as configured.
func (x xfcc) details(peer []*x509.Certificate, localURIs []string) string {
	leaf := peer[0]
	var parts []string
	for _, u := range localURIs {
		parts = append(parts, "By="+u)
	}
	sum := sha256.Sum256(leaf.Raw)
	parts = append(parts, "Hash="+hex.EncodeToString(sum[:]))
	if x.cert {
		parts = append(parts, `Cert="`+urlEncodePEM(leaf.Raw)+`"`)
	}
	if x.chain {
		var b strings.Builder
		for _, c := range peer {
			b.WriteString(urlEncodePEM(c.Raw))
		}
		parts = append(parts, `Chain="`+b.String()+`"`)
	}
	if x.subject {
		// The key is there even when the subject is empty, as in Envoy.
		// The RFC 2253 string escapes its own quotes and semicolons.
		parts = append(parts, `Subject="`+leaf.Subject.String()+`"`)
	}
	if x.uri {
		if len(leaf.URIs) == 0 {
			parts = append(parts, "URI=")
		}
		for _, u := range leaf.URIs {
			parts = append(parts, "URI="+u.String())
		}
	}
	if x.dns {
		for _, d := range leaf.DNSNames {
			parts = append(parts, "DNS="+d)
		}
	}
	return strings.Join(parts, ";")
}

// urlEncodePEM is a certificate in PEM, percent-encoded so that it fits
// in a header value: everything but letters, digits and "-._~" is
// encoded, the newlines and spaces of the PEM included.
func urlEncodePEM(der []byte) string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for _, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
