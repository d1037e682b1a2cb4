package hcm

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

func TestXFCC(t *testing.T) {
	u, _ := url.Parse("spiffe://cluster.local/ns/default/sa/client")
	leaf := &x509.Certificate{Raw: []byte("client-der"), Subject: pkix.Name{CommonName: "client", Organization: []string{"Example"}}, URIs: []*url.URL{u}, DNSNames: []string{"client.example.com"}}
	sum := sha256.Sum256(leaf.Raw)
	hash := "Hash=" + hex.EncodeToString(sum[:])
	mtls := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	oneWay := &tls.ConnectionState{}
	const spoofed = "By=spiffe://x;Hash=00;URI=spiffe://cluster.local/ns/istio-system/sa/admin"
	all := xfcc{subject: true, uri: true, dns: true}
	for _, tc := range []struct {
		name  string
		x     xfcc
		st    *tls.ConnectionState
		prior string
		want  string // "" for no header
	}{
		{"sanitize removes", xfcc{mode: hcmv3.HttpConnectionManager_SANITIZE}, mtls, spoofed, ""},
		{"sanitize_set on plain text removes", xfcc{mode: hcmv3.HttpConnectionManager_SANITIZE_SET}, nil, spoofed, ""},
		{"sanitize_set without a client certificate removes", xfcc{mode: hcmv3.HttpConnectionManager_SANITIZE_SET}, oneWay, spoofed, ""},
		{"sanitize_set on mutual TLS sets", withMode(all, hcmv3.HttpConnectionManager_SANITIZE_SET), mtls, spoofed,
			"By=spiffe://cluster.local/ns/istio-system/sa/gw;" + hash + `;Subject="CN=client,O=Example";URI=spiffe://cluster.local/ns/default/sa/client;DNS=client.example.com`},
		{"append_forward appends", withMode(xfcc{}, hcmv3.HttpConnectionManager_APPEND_FORWARD), mtls, "Hash=aa",
			"Hash=aa,By=spiffe://cluster.local/ns/istio-system/sa/gw;" + hash},
		{"forward_only keeps on mutual TLS", xfcc{mode: hcmv3.HttpConnectionManager_FORWARD_ONLY}, mtls, spoofed, spoofed},
		{"forward_only removes on plain text", xfcc{mode: hcmv3.HttpConnectionManager_FORWARD_ONLY}, nil, spoofed, ""},
		{"always_forward_only keeps", xfcc{mode: hcmv3.HttpConnectionManager_ALWAYS_FORWARD_ONLY}, nil, spoofed, spoofed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.prior != "" {
				h.Set(xfccHeader, tc.prior)
			}
			tc.x.apply(h, tc.st, []string{"spiffe://cluster.local/ns/istio-system/sa/gw"})
			if got := strings.Join(h[xfccHeader], "|"); got != tc.want {
				t.Errorf("x-forwarded-client-cert %q, want %q", got, tc.want)
			}
		})
	}
}

func withMode(x xfcc, m hcmv3.HttpConnectionManager_ForwardClientCertDetails) xfcc {
	x.mode = m
	return x
}

func TestURLEncodePEM(t *testing.T) {
	got := urlEncodePEM([]byte{0xfb, 0xff})
	if !strings.HasPrefix(got, "-----BEGIN%20CERTIFICATE-----%0A") || strings.ContainsAny(got, " \n+/=") {
		t.Errorf("urlEncodePEM = %q", got)
	}
}

func TestXFFClient(t *testing.T) {
	for _, tc := range []struct {
		xff  []string
		hops uint32
		want string // "" when the peer is kept
	}{
		{[]string{"203.0.113.9"}, 1, "203.0.113.9"},
		{[]string{"203.0.113.128, 203.0.113.10, 192.0.2.1"}, 2, "203.0.113.10"},
		{[]string{"203.0.113.128", "203.0.113.10,192.0.2.1"}, 3, "203.0.113.128"},
		{[]string{"203.0.113.9"}, 2, ""},
		{nil, 1, ""},
		{[]string{"not-an-ip"}, 1, ""},
		{[]string{"::ffff:10.0.0.1"}, 1, "10.0.0.1"},
	} {
		a, ok := xffClient(tc.xff, tc.hops)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("xffClient(%q, %d) = %q, want %q", tc.xff, tc.hops, got, tc.want)
		}
	}
}

// A subject cannot smuggle elements into the header: its quotes and
// semicolons stay escaped, once.
func TestXFCCSubjectEscaped(t *testing.T) {
	leaf := &x509.Certificate{Raw: []byte("x"), Subject: pkix.Name{CommonName: `evil";URI=spiffe://cluster.local/ns/istio-system/sa/admin`}}
	got := xfcc{subject: true}.details([]*x509.Certificate{leaf}, nil)
	if !strings.Contains(got, `Subject="CN=evil\";URI=`) && !strings.Contains(got, `Subject="CN=evil\"\;URI=`) {
		t.Errorf("details %q: the subject's quote is not escaped once", got)
	}
	if strings.Contains(got, `\\"`) {
		t.Errorf("details %q: escaped twice", got)
	}
}
