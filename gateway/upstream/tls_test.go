package upstream_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/ca"
	"github.com/waygate/waygate/gateway/upstream"
)

type secretMap map[string]*tlsv3.Secret

func (s secretMap) Secret(name string) *tlsv3.Secret { return s[name] }

// meshSecrets are the gateway's "default" and "ROOTCA" secrets, as the
// control plane serves them.
func meshSecrets(t *testing.T, root *ca.CA) secretMap {
	t.Helper()
	cert, err := root.Issue(ca.GatewayIdentity, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	inline := func(b []byte) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
	}
	return secretMap{
		"default": {Name: "default", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(cert.ChainPEM), PrivateKey: inline(cert.KeyPEM)}}},
		"ROOTCA": {Name: "ROOTCA", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(root.RootPEM())}}},
	}
}

// startMeshBackend serves HTTP over Istio mTLS as a sidecar would: the
// certificate of id from root, and a client certificate required from
// the same root. It answers with the client's identity.
func startMeshBackend(t *testing.T, root *ca.CA, id ca.Identity) string {
	t.Helper()
	cert, err := root.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := cert.TLS()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root.Root())
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{kp},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-peer", r.TLS.PeerCertificates[0].URIs[0].String())
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// istioCluster is a cluster over addr as istiod builds it with auto
// mTLS: Istio mTLS to endpoints labeled tlsMode "istio", plain text to
// the others. sans are the expected server identities.
func istioCluster(t *testing.T, name, addr string, inMesh bool, sans ...string) *clusterv3.Cluster {
	t.Helper()
	vc := &tlsv3.CertificateValidationContext{}
	for _, s := range sans {
		vc.MatchSubjectAltNames = append(vc.MatchSubjectAltNames, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}})
	}
	mtls, err := anypb.New(&tlsv3.UpstreamTlsContext{
		Sni: "outbound_.8000_._.httpbin.default.svc.cluster.local",
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "default"}},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext:         vc,
					ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "ROOTCA"},
				},
			},
			AlpnProtocols: []string{"istio-peer-exchange", "istio"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := anypb.New(&rawbufferv3.RawBuffer{})
	c := cluster([]ep{{addr: addr}}, func(c *clusterv3.Cluster) {
		c.Name = name
		c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{
			{Name: "tlsMode-istio", Match: &structpb.Struct{Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}},
				TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mtls}}},
			{Name: "tlsMode-disabled", Match: &structpb.Struct{},
				TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: raw}}},
		}
	})
	if inMesh {
		lb := c.LoadAssignment.Endpoints[0].LbEndpoints[0]
		lb.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"envoy.transport_socket_match": {Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}},
		}}
	}
	return c
}

// A cluster with istiod's auto mTLS connects to a mesh endpoint with the
// gateway's workload certificate and checks the server's identity
// against the mesh root and the expected service account; other
// endpoints get plain text. Until SDS delivers the secrets, mesh
// endpoints fail and plain ones work.
func TestIstioMutualUpstream(t *testing.T) {
	root, err := ca.New("")
	if err != nil {
		t.Fatal(err)
	}
	httpbin := ca.Identity{Namespace: "default", ServiceAccount: "httpbin"}
	meshAddr := startMeshBackend(t, root, httpbin)
	plainAddr := startBackend(t, backend.Options{}).Addr()
	httpbinSAN := httpbin.SPIFFEID("cluster.local").String()

	clusters := map[string]*clusterv3.Cluster{
		"mesh":     istioCluster(t, "mesh", meshAddr, true, httpbinSAN),
		"plain":    istioCluster(t, "plain", plainAddr, false, httpbinSAN),
		"impostor": istioCluster(t, "impostor", meshAddr, true, "spiffe://cluster.local/ns/default/sa/reviews"),
	}
	m := upstream.NewManager()
	t.Cleanup(m.Close)

	get := func(cl *upstream.Cluster) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e, err := cl.Pick(upstream.PickContext{})
		if err != nil {
			return "", err
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+e.Address+"/", nil)
		resp, err := cl.RoundTrip(e, req, false)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		return resp.Header.Get("x-peer") + resp.Header.Get("x-version"), nil
	}

	before, err := m.BuildWithSecrets(clusters, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(before["mesh"]); err == nil || !strings.Contains(err.Error(), "not available yet") {
		t.Errorf("mesh endpoint before SDS: %v, want a missing secret", err)
	}
	if got, err := get(before["plain"]); err != nil || got != "v1" {
		t.Errorf("plain endpoint before SDS: %q %v, want the plain backend", got, err)
	}

	after, err := m.BuildWithSecrets(clusters, nil, meshSecrets(t, root))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cluster string
		want    string
		wantErr string
	}{
		{"mesh", ca.GatewayIdentity.SPIFFEID("cluster.local").String(), ""},
		{"plain", "v1", ""},
		{"impostor", "", "match no allowed name"},
	} {
		t.Run(tc.cluster, func(t *testing.T) {
			got, err := get(after[tc.cluster])
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}

	// A new expected identity is a new cluster: the connection the old
	// one opened to mesh is not reused.
	clusters["mesh"] = istioCluster(t, "mesh", meshAddr, true, "spiffe://cluster.local/ns/default/sa/reviews")
	changed, err := m.BuildWithSecrets(clusters, nil, meshSecrets(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := get(changed["mesh"]); err == nil {
		t.Errorf("after the identity changed: %q over a connection opened for the old one", got)
	}

	if names := upstream.SecretNames(clusters); len(names) != 2 {
		t.Errorf("SecretNames = %v, want default and ROOTCA", names)
	}
}

// An HTTP/2 cluster over Istio mTLS speaks h2 on the TLS connection
// when the server agrees to it by ALPN, as istiod's ALPN for h2
// clusters (istio-peer-exchange, istio, h2) lets a sidecar do.
func TestIstioMutualUpstreamHTTP2(t *testing.T) {
	root, err := ca.New("")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := root.Issue(ca.Identity{Namespace: "default", ServiceAccount: "grpc"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := cert.TLS()
	roots := x509.NewCertPool()
	roots.AddCert(root.Root())
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots,
		NextProtos: []string{"h2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-proto", r.Proto)
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c := istioCluster(t, "h2", ln.Addr().String(), true)
	c.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{} //nolint:staticcheck // the field istiod still sets.
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := c.TransportSocketMatches[0].TransportSocket.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		t.Fatal(err)
	}
	ctx.CommonTlsContext.AlpnProtocols = []string{"istio-peer-exchange", "istio", "h2"}
	c.TransportSocketMatches[0].TransportSocket.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, ctx)}

	m := upstream.NewManager()
	t.Cleanup(m.Close)
	built, err := m.BuildWithSecrets(map[string]*clusterv3.Cluster{"h2": c}, nil, meshSecrets(t, root))
	if err != nil {
		t.Fatal(err)
	}
	cl := built["h2"]
	e, err := cl.Pick(upstream.PickContext{})
	if err != nil {
		t.Fatal(err)
	}
	reqCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(reqCtx, "GET", "http://"+e.Address+"/", nil)
	resp, err := cl.RoundTrip(e, req, false)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("x-proto"); got != "HTTP/2.0" {
		t.Fatalf("backend saw %q, want HTTP/2.0", got)
	}
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Active health checks go over the cluster's transport socket, as in
// Envoy: a mesh endpoint that takes only Istio mTLS is checked over it,
// and passes once the workload certificate has arrived.
func TestIstioMutualHealthCheck(t *testing.T) {
	root, err := ca.New("")
	if err != nil {
		t.Fatal(err)
	}
	addr := startMeshBackend(t, root, ca.Identity{Namespace: "default", ServiceAccount: "httpbin"})
	c := istioCluster(t, "mesh", addr, true)
	httpCheck(c)
	m := upstream.NewManager()
	t.Cleanup(m.Close)
	clusters := map[string]*clusterv3.Cluster{"mesh": c}
	before, err := m.BuildWithSecrets(clusters, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := available(before["mesh"]); n != 0 {
		t.Fatalf("%d hosts passed a check without a client certificate", n)
	}
	after, err := m.BuildWithSecrets(clusters, nil, meshSecrets(t, root))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "the mesh host healthy", func() bool { return available(after["mesh"]) == 1 })
}
