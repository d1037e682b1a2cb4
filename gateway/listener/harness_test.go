package listener_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	_ "github.com/waygate/waygate/filters/router"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/snapshot"
	"github.com/waygate/waygate/gateway/upstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// gateway is the data plane of one test: a snapshot builder fed with
// xDS resources, and the listener manager it drives.
type gateway struct {
	t *testing.T
	b *snapshot.Builder
	m *listener.Manager
	// clusters are those addClusters installed so far.
	clusters map[string]proto.Message
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	b := &snapshot.Builder{HCM: &hcm.Compiler{}, Upstream: upstream.NewManager()}
	m := &listener.Manager{Views: b.View, Handler: &hcm.Handler{Views: b.View}, DrainTimeout: 5 * time.Second}
	b.Listeners = m
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Drain(ctx)
	})
	return &gateway{t: t, b: b, m: m}
}

// apply installs the complete set of resources of typeURL.
func (g *gateway) apply(typeURL string, msgs ...proto.Message) error {
	res := map[string]*anypb.Any{}
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			g.t.Fatal(err)
		}
		res[resourceName(m)] = a
	}
	return g.b.Apply(typeURL, res)
}

// addClusters installs clusters beside those added before; clusters
// are sent as a complete set, so a test starting several kinds of
// backend adds them here.
func (g *gateway) addClusters(cs ...*clusterv3.Cluster) {
	g.t.Helper()
	if g.clusters == nil {
		g.clusters = map[string]proto.Message{}
	}
	for _, c := range cs {
		g.clusters[c.GetName()] = c
	}
	all := make([]proto.Message, 0, len(g.clusters))
	for _, c := range g.clusters {
		all = append(all, c)
	}
	g.mustApply(resourcev3.ClusterType, all...)
}

// mustApply is apply for resources the test expects to be accepted.
func (g *gateway) mustApply(typeURL string, msgs ...proto.Message) {
	g.t.Helper()
	if err := g.apply(typeURL, msgs...); err != nil {
		g.t.Fatalf("apply %s: %v", typeURL, err)
	}
}

// addr is the bound address of the named listener.
func (g *gateway) addr(name string) string {
	g.t.Helper()
	a := g.m.Addr(name)
	if a == "" {
		g.t.Fatalf("listener %q is not bound", name)
	}
	return a
}

func resourceName(m proto.Message) string {
	switch r := m.(type) {
	case *listenerv3.Listener:
		return r.GetName()
	case *clusterv3.Cluster:
		return r.GetName()
	case *endpointv3.ClusterLoadAssignment:
		return r.GetClusterName()
	case *routev3.RouteConfiguration:
		return r.GetName()
	case *tlsv3.Secret:
		return r.GetName()
	}
	panic("unknown resource type")
}

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func socketAddress(addr string) *corev3.Address {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	var p uint32
	for _, c := range port {
		p = p*10 + uint32(c-'0')
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: p},
	}}}
}

// staticCluster is a STATIC cluster over addrs.
func staticCluster(name string, addrs ...string) *clusterv3.Cluster {
	var eps []*endpointv3.LbEndpoint
	for _, a := range addrs {
		eps = append(eps, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
			Endpoint: &endpointv3.Endpoint{Address: socketAddress(a)},
		}})
	}
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(2 * time.Second),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: eps}},
		},
	}
}

// http2Cluster is a STATIC cluster that speaks HTTP/2 (h2c) upstream.
func http2Cluster(t testing.TB, name string, addrs ...string) *clusterv3.Cluster {
	c := staticCluster(name, addrs...)
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
		"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(t, &upstreamhttpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
						Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
					},
				},
			},
		}),
	}
	return c
}

// routeAll sends every request to cluster.
func routeAll(name, cluster string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "all",
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
				}},
			}},
		}},
	}
}

// httpFilter is an HTTP connection manager using the RDS route rds.
func httpFilter(t testing.TB, rds string, edit ...func(*hcmv3.HttpConnectionManager)) *listenerv3.Filter {
	m := &hcmv3.HttpConnectionManager{
		StatPrefix: "ingress",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: rds,
			ConfigSource:    &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})},
		}},
	}
	for _, e := range edit {
		e(m)
	}
	return &listenerv3.Filter{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, m)}}
}

// tcpFilter is a TCP proxy to one cluster, or weighted clusters given
// as name, weight pairs.
func tcpFilter(t testing.TB, clusters ...any) *listenerv3.Filter {
	p := &tcpv3.TcpProxy{StatPrefix: "tcp"}
	if len(clusters) == 1 {
		p.ClusterSpecifier = &tcpv3.TcpProxy_Cluster{Cluster: clusters[0].(string)}
	} else {
		wc := &tcpv3.TcpProxy_WeightedCluster{}
		for i := 0; i < len(clusters); i += 2 {
			wc.Clusters = append(wc.Clusters, &tcpv3.TcpProxy_WeightedCluster_ClusterWeight{Name: clusters[i].(string), Weight: uint32(clusters[i+1].(int))})
		}
		p.ClusterSpecifier = &tcpv3.TcpProxy_WeightedClusters{WeightedClusters: wc}
	}
	return &listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, p)}}
}

// newListener listens on addr ("127.0.0.1:0" for any port).
func newListener(name, addr string, chains ...*listenerv3.FilterChain) *listenerv3.Listener {
	return &listenerv3.Listener{Name: name, Address: socketAddress(addr), FilterChains: chains}
}

// tlsSocket is the transport socket of a TLS-terminating chain.
func tlsSocket(t testing.TB, ctx *tlsv3.DownstreamTlsContext) *corev3.TransportSocket {
	return &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, ctx)}}
}

func inline(s []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: string(s)}}
}

// keyPair is a PEM certificate and key.
type keyPair struct {
	cert, key []byte
	x509      *x509.Certificate
	priv      *ecdsa.PrivateKey
}

func (k keyPair) tlsCertificate() *tlsv3.TlsCertificate {
	return &tlsv3.TlsCertificate{CertificateChain: inline(k.cert), PrivateKey: inline(k.key)}
}

func (k keyPair) pair(t testing.TB) tls.Certificate {
	c, err := tls.X509KeyPair(k.cert, k.key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newCA makes a self-signed ECDSA certificate authority.
func newCA(t testing.TB, name string) keyPair {
	return issue(t, nil, name, true)
}

// issue makes a certificate for the given SANs (DNS names, or URIs when
// they contain "://"), signed by ca (self-signed when ca is nil).
func issue(t testing.TB, ca *keyPair, cn string, isCA bool, sans ...string) keyPair {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, s := range sans {
		if u, err := url.Parse(s); err == nil && u.Scheme != "" {
			tmpl.URIs = append(tmpl.URIs, u)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	parent, signer := tmpl, priv
	if ca != nil {
		parent, signer = ca.x509, ca.priv
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &priv.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		x509: cert,
		priv: priv,
	}
}

func (k keyPair) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(k.x509)
	return p
}

// echo is what the conformance backend answers with.
type echo struct {
	Service string            `json:"service"`
	Version string            `json:"version"`
	Path    string            `json:"path"`
	Proto   string            `json:"proto"`
	Headers map[string]string `json:"headers"`
}

// get sends a GET through client and decodes the backend's echo.
func get(t testing.TB, c *http.Client, u string) (*http.Response, echo) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", u, err)
	}
	var e echo
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("GET %s: %v in %q", u, err, b)
		}
	} else {
		t.Logf("GET %s: %d %q", u, resp.StatusCode, b)
	}
	return resp, e
}

// plainClient does not reuse connections, so each request is a new
// connection seeing the listener's current config.
func plainClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}
