package listener_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/waygate/waygate/conformance/backend"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// startBackend starts an echo backend and installs it as cluster "web"
// with route "web" sending everything there.
func startBackend(t *testing.T, g *gateway) *backend.Server {
	t.Helper()
	be, err := backend.Start(backend.Options{Service: "web", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	g.addClusters(staticCluster("web", be.Addr()))
	g.mustApply(resourcev3.RouteType, routeAll("web", "web"))
	return be
}

// tlsClient trusts roots and sends serverName; it never reuses
// connections, so every request makes a new handshake.
func tlsClient(roots *x509.CertPool, serverName string, certs ...tls.Certificate) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: serverName, Certificates: certs},
	}}
}

// servedCert returns the leaf certificate the gateway presented.
func servedCert(t *testing.T, c *http.Client, u string) *x509.Certificate {
	t.Helper()
	resp, e := get(t, c, u)
	if resp.StatusCode != http.StatusOK || e.Service != "web" {
		t.Fatalf("GET %s: status %d from %q", u, resp.StatusCode, e.Service)
	}
	return resp.TLS.PeerCertificates[0]
}

func TestTLSChainsBySNI(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	ca := newCA(t, "test CA")
	certA := issue(t, &ca, "a", false, "a.example.com")
	certB := issue(t, &ca, "b", false, "*.example.com")
	chain := func(names []string, kp keyPair) *listenerv3.FilterChain {
		return &listenerv3.FilterChain{
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: names},
			TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsCertificates: []*tlsv3.TlsCertificate{kp.tlsCertificate()},
			}}),
			Filters: []*listenerv3.Filter{httpFilter(t, "web")},
		}
	}
	g.mustApply(resourcev3.ListenerType, newListener("https", "127.0.0.1:0",
		chain([]string{"*.example.com"}, certB),
		chain([]string{"a.example.com"}, certA),
	))
	u := "https://" + g.addr("https") + "/"

	tests := []struct {
		sni  string
		want string // common name of the served certificate; "" for no handshake
	}{
		{sni: "a.example.com", want: "a"},
		{sni: "b.example.com", want: "b"},
		{sni: "other.example.org", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			c := tlsClient(ca.pool(), tt.sni)
			if tt.want == "" {
				c.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
				if resp, err := c.Get(u); err == nil {
					resp.Body.Close()
					t.Fatalf("SNI %q matching no chain got %d, want the connection closed", tt.sni, resp.StatusCode)
				}
				return
			}
			if got := servedCert(t, c, u).Subject.CommonName; got != tt.want {
				t.Errorf("SNI %q got certificate %q, want %q", tt.sni, got, tt.want)
			}
		})
	}
}

func TestDefaultFilterChain(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	ca := newCA(t, "test CA")
	certA := issue(t, &ca, "a", false, "a.example.com")
	fallback := issue(t, &ca, "fallback", false, "fallback.example.com")
	tlsChain := func(kp keyPair) (*corev3.TransportSocket, []*listenerv3.Filter) {
		return tlsSocket(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificates: []*tlsv3.TlsCertificate{kp.tlsCertificate()},
		}}), []*listenerv3.Filter{httpFilter(t, "web")}
	}
	ts, fs := tlsChain(certA)
	l := newListener("https", "127.0.0.1:0", &listenerv3.FilterChain{
		FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"a.example.com"}},
		TransportSocket:  ts, Filters: fs,
	})
	dts, dfs := tlsChain(fallback)
	l.DefaultFilterChain = &listenerv3.FilterChain{Name: "fallback", TransportSocket: dts, Filters: dfs}
	g.mustApply(resourcev3.ListenerType, l)
	u := "https://" + g.addr("https") + "/"

	if got := servedCert(t, tlsClient(ca.pool(), "a.example.com"), u).Subject.CommonName; got != "a" {
		t.Errorf("a.example.com got certificate %q", got)
	}
	if got := servedCert(t, tlsClient(ca.pool(), "fallback.example.com"), u).Subject.CommonName; got != "fallback" {
		t.Errorf("an unmatched name got certificate %q, want the default chain's", got)
	}
}

// sdsListener terminates TLS with the SDS secret "gw-cert".
func sdsListener(t *testing.T) *listenerv3.Listener {
	return newListener("https", "127.0.0.1:0", &listenerv3.FilterChain{
		TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{
				Name:      "gw-cert",
				SdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
			}},
		}}),
		Filters: []*listenerv3.Filter{httpFilter(t, "web")},
	})
}

func certSecret(name string, kp keyPair) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: kp.tlsCertificate()}}
}

func TestSDSWarmingAndRotation(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	ca := newCA(t, "test CA")

	// Before the secret arrives the listener warms: accepted, not bound.
	if err := g.apply(resourcev3.ListenerType, sdsListener(t)); err != nil {
		t.Fatalf("a listener waiting for its secret was rejected: %v", err)
	}
	if a := g.m.Addr("https"); a != "" {
		t.Fatalf("a listener without its certificate is bound on %s", a)
	}
	if why := g.b.Current().Warming["https"]; !strings.Contains(why, "gw-cert") {
		t.Errorf("warming reason %q does not name the secret", why)
	}
	if got := g.b.Names(resourcev3.SecretType); len(got) != 1 || got[0] != "gw-cert" {
		t.Errorf("secret subscription %q, want [gw-cert]", got)
	}

	g.mustApply(resourcev3.SecretType, certSecret("gw-cert", issue(t, &ca, "v1", false, "gw.example.com")))
	u := "https://" + g.addr("https") + "/"
	c := tlsClient(ca.pool(), "gw.example.com")
	if got := servedCert(t, c, u).Subject.CommonName; got != "v1" {
		t.Fatalf("served %q, want v1", got)
	}

	// Rotation: new connections get the new certificate.
	g.mustApply(resourcev3.SecretType, certSecret("gw-cert", issue(t, &ca, "v2", false, "gw.example.com")))
	if a := "https://" + g.addr("https") + "/"; a != u {
		t.Errorf("rotation moved the listener from %s to %s", u, a)
	}
	if got := servedCert(t, c, u).Subject.CommonName; got != "v2" {
		t.Errorf("after rotation served %q, want v2", got)
	}
}

func TestMutualTLS(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	serverCA := newCA(t, "server CA")
	clientCA := newCA(t, "client CA")
	otherCA := newCA(t, "other CA")
	serverCert := issue(t, &serverCA, "gw", false, "gw.example.com")
	good := issue(t, &clientCA, "good", false, "spiffe://cluster.local/ns/default/sa/good")
	bad := issue(t, &clientCA, "bad", false, "spiffe://cluster.local/ns/default/sa/bad")
	stranger := issue(t, &otherCA, "stranger", false, "spiffe://cluster.local/ns/default/sa/good")

	listenerFor := func(require bool) *listenerv3.Listener {
		return newListener("mtls", "127.0.0.1:0", &listenerv3.FilterChain{
			TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{
				RequireClientCertificate: wrapperspb.Bool(require),
				CommonTlsContext: &tlsv3.CommonTlsContext{
					TlsCertificates: []*tlsv3.TlsCertificate{serverCert.tlsCertificate()},
					ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
						TrustedCa: inline(clientCA.cert),
						MatchSubjectAltNames: []*matcherv3.StringMatcher{{
							MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "spiffe://cluster.local/ns/default/sa/good"},
						}},
					}},
				},
			}),
			Filters: []*listenerv3.Filter{httpFilter(t, "web")},
		})
	}
	tests := []struct {
		name    string
		require bool
		cert    *keyPair
		ok      bool
	}{
		{name: "required, no client certificate", require: true, cert: nil, ok: false},
		{name: "required, certificate from the trusted CA", require: true, cert: &good, ok: true},
		{name: "required, SAN not allowed", require: true, cert: &bad, ok: false},
		{name: "required, certificate from another CA", require: true, cert: &stranger, ok: false},
		{name: "optional, no client certificate", require: false, cert: nil, ok: true},
		{name: "optional, certificate from the trusted CA", require: false, cert: &good, ok: true},
		{name: "optional, SAN not allowed", require: false, cert: &bad, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.mustApply(resourcev3.ListenerType, listenerFor(tt.require))
			var certs []tls.Certificate
			if tt.cert != nil {
				certs = append(certs, tt.cert.pair(t))
			}
			c := tlsClient(serverCA.pool(), "gw.example.com", certs...)
			resp, err := c.Get("https://" + g.addr("mtls") + "/")
			if err == nil {
				resp.Body.Close()
			}
			switch {
			case tt.ok && (err != nil || resp.StatusCode != http.StatusOK):
				t.Errorf("want 200, got %v %v", resp, err)
			case !tt.ok && err == nil:
				t.Errorf("want the handshake refused, got %d", resp.StatusCode)
			}
		})
	}
}

// A listener update that needs a secret not yet sent warms while the
// previous version keeps serving, as in Envoy: a Gateway switching its
// credentialName must not take port 443 down until the secret arrives.
func TestUpdateWaitingForSecretKeepsServing(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	ca := newCA(t, "test CA")
	g.mustApply(resourcev3.SecretType, certSecret("gw-cert", issue(t, &ca, "v1", false, "gw.example.com")))
	g.mustApply(resourcev3.ListenerType, sdsListener(t))
	u := "https://" + g.addr("https") + "/"
	c := tlsClient(ca.pool(), "gw.example.com")
	if got := servedCert(t, c, u).Subject.CommonName; got != "v1" {
		t.Fatalf("served %q, want v1", got)
	}

	next := sdsListener(t)
	var ctx tlsv3.DownstreamTlsContext
	if err := next.FilterChains[0].TransportSocket.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatal(err)
	}
	ctx.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].Name = "gw-cert-2"
	next.FilterChains[0].TransportSocket = tlsSocket(t, &ctx)
	if err := g.apply(resourcev3.ListenerType, next); err != nil {
		t.Fatalf("an update waiting for its secret was rejected: %v", err)
	}
	if got := servedCert(t, c, u).Subject.CommonName; got != "v1" {
		t.Errorf("while the update warms served %q, want the previous version's v1", got)
	}

	g.mustApply(resourcev3.SecretType,
		certSecret("gw-cert", issue(t, &ca, "v1", false, "gw.example.com")),
		certSecret("gw-cert-2", issue(t, &ca, "v2", false, "gw.example.com")))
	if got := servedCert(t, c, "https://"+g.addr("https")+"/").Subject.CommonName; got != "v2" {
		t.Errorf("once its secret arrived the update served %q, want v2", got)
	}
}

// firstFlight is the ClientHello a Go client sends for sni.
func firstFlight(t *testing.T, sni string) []byte {
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	go tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(s, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(s, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

func TestHandshakeTimeout(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	ca := newCA(t, "test CA")
	cert := issue(t, &ca, "gw", false, "gw.example.com")
	for _, filter := range []*listenerv3.Filter{httpFilter(t, "web"), tcpFilter(t, "web")} {
		t.Run(filter.GetName(), func(t *testing.T) {
			g.mustApply(resourcev3.ListenerType, newListener("tls", "127.0.0.1:0", &listenerv3.FilterChain{
				TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
					TlsCertificates: []*tlsv3.TlsCertificate{cert.tlsCertificate()},
				}}),
				TransportSocketConnectTimeout: durationpb.New(200 * time.Millisecond),
				Filters:                       []*listenerv3.Filter{filter},
			}))
			c, err := net.DialTimeout("tcp", g.addr("tls"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Say hello, then never finish the handshake.
			c.Write(firstFlight(t, "gw.example.com"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Error("a stalled handshake outlived transport_socket_connect_timeout")
			}
		})
	}
}
