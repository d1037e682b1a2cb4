package translate

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/waygate/waygate/gateway/istio"
)

// efBase is a gateway on port 8080 routing to one service, which the
// EnvoyFilters of the tests patch.
const efBase = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - name: api
    route: [{destination: {host: api}}]
`

// translateEF translates efBase with the given EnvoyFilters for the
// default ingress gateway, failing on any error finding.
func translateEF(t *testing.T, filters string, p Proxy) *Resources {
	t.Helper()
	res, warnings := Translate(parseValid(t, "t.yaml", []byte(efBase+"---\n"+filters)), p)
	for _, w := range warnings {
		t.Log(w)
	}
	return res
}

func efListener(t *testing.T, res *Resources, name string) *listenerv3.Listener {
	t.Helper()
	for _, l := range res.Listeners {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("no listener %s", name)
	return nil
}

func efHCM(t *testing.T, l *listenerv3.Listener) *hcmv3.HttpConnectionManager {
	t.Helper()
	hcm := decodeHCM(l.GetFilterChains()[0].GetFilters()[0])
	if hcm == nil {
		t.Fatal("the listener's first filter is not a connection manager")
	}
	return hcm
}

func httpFilterNames(hcm *hcmv3.HttpConnectionManager) []string {
	var out []string
	for _, h := range hcm.GetHttpFilters() {
		out = append(out, h.GetName())
	}
	return out
}

func efCluster(res *Resources, name string) *clusterv3.Cluster {
	for _, c := range res.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Istio's local rate limit task: an HTTP filter inserted before the
// router as a TypedStruct, and the route's per-filter config merged in.
func TestEnvoyFilterLocalRateLimit(t *testing.T) {
	res := translateEF(t, `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ratelimit, namespace: istio-system}
spec:
  workloadSelector: {labels: {istio: ingressgateway}}
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: GATEWAY
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
            subFilter: {name: envoy.filters.http.router}
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
          type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          value: {stat_prefix: http_local_rate_limiter}
  - applyTo: HTTP_ROUTE
    match:
      context: GATEWAY
      routeConfiguration:
        vhost:
          route: {name: api}
    patch:
      operation: MERGE
      value:
        typed_per_filter_config:
          envoy.filters.http.local_ratelimit:
            "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            stat_prefix: api
            token_bucket: {max_tokens: 2, fill_interval: 60s}
`, Proxy{})
	names := httpFilterNames(efHCM(t, efListener(t, res, "0.0.0.0_8080")))
	if i := slices.Index(names, "envoy.filters.http.local_ratelimit"); i < 0 || names[i+1] != "envoy.filters.http.router" {
		t.Errorf("http filters %v: want local_ratelimit right before the router", names)
	}
	var route *routev3.Route
	for _, r := range res.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		if r.GetName() == "api" {
			route = r
		}
	}
	if route == nil {
		t.Fatal("no route named api")
	}
	if route.GetRoute().GetCluster() == "" && route.GetRoute().GetWeightedClusters() == nil {
		t.Error("the merge lost the route's action")
	}
	if _, ok := route.GetTypedPerFilterConfig()["envoy.filters.http.local_ratelimit"]; !ok {
		t.Errorf("route per-filter configs %v lack the rate limit", route.GetTypedPerFilterConfig())
	}
}

// MERGE into a filter's typed_config merges the message inside the Any:
// the generated fields stay, the patch's are added or replaced.
func TestEnvoyFilterMergeTypedConfig(t *testing.T) {
	res := translateEF(t, `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: xff, namespace: istio-system}
spec:
  configPatches:
  - applyTo: NETWORK_FILTER
    match:
      listener:
        portNumber: 8080
        filterChain:
          filter: {name: envoy.filters.network.http_connection_manager}
    patch:
      operation: MERGE
      value:
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          xff_num_trusted_hops: 2
          server_name: edge
  - applyTo: LISTENER
    match: {listener: {portNumber: 8080}}
    patch:
      operation: MERGE
      value: {per_connection_buffer_limit_bytes: 65536}
`, Proxy{})
	l := efListener(t, res, "0.0.0.0_8080")
	hcm := efHCM(t, l)
	if hcm.GetXffNumTrustedHops() != 2 || hcm.GetServerName() != "edge" {
		t.Errorf("xff_num_trusted_hops %d, server_name %q: the merge did not apply", hcm.GetXffNumTrustedHops(), hcm.GetServerName())
	}
	if hcm.GetRds().GetRouteConfigName() != "http.8080" || len(hcm.GetHttpFilters()) == 0 {
		t.Error("the merge dropped the generated fields")
	}
	if l.GetPerConnectionBufferLimitBytes().GetValue() != 65536 {
		t.Errorf("per_connection_buffer_limit_bytes %v", l.GetPerConnectionBufferLimitBytes())
	}
}

// CLUSTER patches: MERGE by service and port, ADD, REMOVE by name
// (taking the endpoints along); VIRTUAL_HOST MERGE.
func TestEnvoyFilterClustersAndHosts(t *testing.T) {
	res := translateEF(t, `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: clusters, namespace: istio-system}
spec:
  configPatches:
  - applyTo: CLUSTER
    match: {cluster: {service: api.default.svc.cluster.local, portNumber: 80}}
    patch:
      operation: MERGE
      value: {connect_timeout: 3s, per_connection_buffer_limit_bytes: 1024}
  - applyTo: CLUSTER
    match: {context: GATEWAY}
    patch:
      operation: ADD
      value:
        name: extra
        type: STATIC
        connect_timeout: 1s
        load_assignment:
          cluster_name: extra
          endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9}}}}]}]
  - applyTo: CLUSTER
    match: {cluster: {name: BlackHoleCluster}}
    patch: {operation: REMOVE}
  - applyTo: VIRTUAL_HOST
    match: {routeConfiguration: {portNumber: 8080, vhost: {name: "*:8080"}}}
    patch:
      operation: MERGE
      value:
        response_headers_to_add: [{header: {key: x-edge, value: waygate}}]
`, Proxy{})
	c := efCluster(res, "outbound|80||api.default.svc.cluster.local")
	if c.GetConnectTimeout().AsDuration().Seconds() != 3 || c.GetPerConnectionBufferLimitBytes().GetValue() != 1024 {
		t.Errorf("merged cluster: connect_timeout %v, buffer limit %v", c.GetConnectTimeout(), c.GetPerConnectionBufferLimitBytes())
	}
	if c.GetEdsClusterConfig() == nil {
		t.Error("the merge dropped the cluster's EDS config")
	}
	if efCluster(res, "extra") == nil {
		t.Error("the added cluster is missing")
	}
	if efCluster(res, "BlackHoleCluster") != nil {
		t.Error("BlackHoleCluster was not removed")
	}
	if !slices.IsSortedFunc(res.Clusters, func(a, b *clusterv3.Cluster) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("clusters are not sorted after the patches")
	}
	vh := res.Routes[0].GetVirtualHosts()[0]
	if len(vh.GetResponseHeadersToAdd()) != 1 || vh.GetResponseHeadersToAdd()[0].GetHeader().GetKey() != "x-edge" {
		t.Errorf("virtual host response headers %v", vh.GetResponseHeadersToAdd())
	}
}

// Which EnvoyFilters apply to a gateway: namespace, workload selector,
// context, proxy version; and the order of priority.
func TestEnvoyFilterSelection(t *testing.T) {
	filter := func(ns, name, extra string, priority int, timeout string) string {
		return `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  priority: ` + strconv.Itoa(priority) + extra + `
  configPatches:
  - applyTo: CLUSTER
    match:
      context: GATEWAY
      cluster: {service: api.default.svc.cluster.local}
    patch:
      operation: MERGE
      value: {connect_timeout: ` + timeout + `}
`
	}
	timeout := func(t *testing.T, filters string, p Proxy) float64 {
		t.Helper()
		return efCluster(translateEF(t, filters, p), "outbound|80||api.default.svc.cluster.local").GetConnectTimeout().AsDuration().Seconds()
	}
	gw := Proxy{IstioVersion: "1.24.2"}
	edge := Proxy{Namespace: "edge"}
	for _, tc := range []struct {
		name    string
		proxy   Proxy
		filters []string
		want    float64
	}{
		{"root namespace applies", gw, []string{filter("istio-system", "a", "", 0, "7s")}, 7},
		{"root namespace applies to any namespace", edge, []string{filter("istio-system", "a", "", 0, "7s")}, 7},
		{"the gateway's own namespace applies", edge, []string{filter("edge", "a", "", 0, "7s")}, 7},
		{"another namespace does not", edge, []string{filter("default", "a", "", 0, "7s")}, 10},
		{"selector matching", gw, []string{filter("istio-system", "a", "\n  workloadSelector: {labels: {istio: ingressgateway}}", 0, "7s")}, 7},
		{"selector not matching", gw, []string{filter("istio-system", "a", "\n  workloadSelector: {labels: {app: other}}", 0, "7s")}, 10},
		{"higher priority applies last", gw, []string{filter("istio-system", "z", "", 5, "6s"), filter("istio-system", "a", "", -1, "9s")}, 6},
		{"by name within a priority", gw, []string{filter("istio-system", "b", "", 0, "9s"), filter("istio-system", "a", "", 0, "6s")}, 9},
		{"root namespace before the gateway's", edge, []string{filter("edge", "a", "", 0, "8s"), filter("istio-system", "z", "", 0, "6s")}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := timeout(t, strings.Join(tc.filters, "---\n"), tc.proxy); got != tc.want {
				t.Errorf("connect_timeout %vs, want %vs", got, tc.want)
			}
		})
	}
	sidecar := strings.Replace(filter("istio-system", "a", "", 0, "7s"), "context: GATEWAY", "context: SIDECAR_OUTBOUND", 1)
	if got := timeout(t, sidecar, gw); got != 10 {
		t.Errorf("a sidecar patch applied: connect_timeout %vs", got)
	}
	versioned := strings.Replace(filter("istio-system", "a", "", 0, "7s"), "context: GATEWAY", "context: GATEWAY\n      proxy: {proxyVersion: '^1\\.24.*'}", 1)
	if got := timeout(t, versioned, gw); got != 7 {
		t.Errorf("a patch for 1.24 did not apply to 1.24.2: connect_timeout %vs", got)
	}
	if got := timeout(t, versioned, Proxy{IstioVersion: "1.25.0"}); got != 10 {
		t.Errorf("a patch for 1.24 applied to 1.25.0: connect_timeout %vs", got)
	}
}

// The PROXY protocol at the gateway, both ways Istio users write it: a
// LISTENER merge adding listener_filters, and a LISTENER_FILTER patch.
func TestEnvoyFilterListenerFilters(t *testing.T) {
	const value = `
        name: envoy.filters.listener.proxy_protocol
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol
`
	for name, patch := range map[string]string{
		"LISTENER MERGE": `  - applyTo: LISTENER
    patch:
      operation: MERGE
      value:
        listener_filters:
        - name: envoy.filters.listener.proxy_protocol
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol
`,
		"LISTENER_FILTER INSERT_FIRST": `  - applyTo: LISTENER_FILTER
    match: {listener: {portNumber: 8080}}
    patch:
      operation: INSERT_FIRST
      value:` + value,
	} {
		t.Run(name, func(t *testing.T) {
			res := translateEF(t, `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: proxy-protocol, namespace: istio-system}
spec:
  workloadSelector: {labels: {istio: ingressgateway}}
  configPatches:
`+patch, Proxy{})
			lfs := efListener(t, res, "0.0.0.0_8080").GetListenerFilters()
			if len(lfs) == 0 || lfs[0].GetName() != "envoy.filters.listener.proxy_protocol" || lfs[0].GetTypedConfig() == nil {
				t.Errorf("listener filters %v", lfs)
			}
		})
	}
}

// efPatches is an EnvoyFilter in istio-system with the given patches.
func efPatches(name, patches string) string {
	return `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ` + name + `, namespace: istio-system}
spec:
  configPatches:
` + patches
}

// What istiod does that a plain reading of the API would get wrong.
func TestEnvoyFilterIstiodSemantics(t *testing.T) {
	const api = "outbound|80||api.default.svc.cluster.local"
	t.Run("a duration is replaced, not added to", func(t *testing.T) {
		res := translateEF(t, efPatches("d", `  - applyTo: CLUSTER
    match: {cluster: {service: api.default.svc.cluster.local}}
    patch: {operation: MERGE, value: {connect_timeout: 0.25s}}
`), Proxy{})
		if got := efCluster(res, api).GetConnectTimeout().AsDuration(); got != 250*time.Millisecond {
			t.Errorf("connect_timeout %v, want 250ms", got)
		}
	})
	t.Run("what a patch added is not patched again", func(t *testing.T) {
		res := translateEF(t, efPatches("a", `  - applyTo: CLUSTER
    patch: {operation: ADD, value: {name: extra, type: STATIC, connect_timeout: 1s}}
  - applyTo: CLUSTER
    match: {cluster: {name: extra}}
    patch: {operation: REMOVE}
  - applyTo: CLUSTER
    patch: {operation: MERGE, value: {connect_timeout: 4s}}
`), Proxy{})
		c := efCluster(res, "extra")
		if c == nil || c.GetConnectTimeout().AsDuration() != time.Second {
			t.Errorf("added cluster %v: want it kept with its own 1s", c)
		}
		if got := efCluster(res, api).GetConnectTimeout().AsDuration(); got != 4*time.Second {
			t.Errorf("generated cluster connect_timeout %v, want the merge's 4s", got)
		}
	})
	t.Run("a listener is matched by port and name only", func(t *testing.T) {
		res := translateEF(t, efPatches("l", `  - applyTo: LISTENER
    match:
      listener:
        portNumber: 8080
        filterChain: {filter: {name: envoy.filters.network.tcp_proxy}}
    patch: {operation: MERGE, value: {per_connection_buffer_limit_bytes: 4096}}
`), Proxy{})
		if got := efListener(t, res, "0.0.0.0_8080").GetPerConnectionBufferLimitBytes().GetValue(); got != 4096 {
			t.Errorf("per_connection_buffer_limit_bytes %d, want 4096", got)
		}
	})
	t.Run("every listed application protocol must be there", func(t *testing.T) {
		res := translateEF(t, efPatches("c", `  - applyTo: NETWORK_FILTER
    match:
      listener:
        filterChain:
          applicationProtocols: "h2,http/1.1"
          filter: {name: envoy.filters.network.http_connection_manager}
    patch: {operation: REMOVE}
`), Proxy{})
		if len(efListener(t, res, "0.0.0.0_8080").GetFilterChains()[0].GetFilters()) != 1 {
			t.Error("a chain without application protocols matched")
		}
	})
	t.Run("REPLACE replaces the first match", func(t *testing.T) {
		res := translateEF(t, efPatches("r", `  - applyTo: HTTP_FILTER
    match: {listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager}}}}
    patch:
      operation: REPLACE
      value: {name: replaced, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}
`), Proxy{})
		names := httpFilterNames(efHCM(t, efListener(t, res, "0.0.0.0_8080")))
		if names[0] != "replaced" || slices.Index(names[1:], "replaced") >= 0 {
			t.Errorf("http filters %v: want only the first replaced", names)
		}
	})
	t.Run("INSERT_FIRST with a route named but absent does nothing", func(t *testing.T) {
		res := translateEF(t, efPatches("i", `  - applyTo: HTTP_ROUTE
    match: {routeConfiguration: {vhost: {route: {name: nosuch}}}}
    patch: {operation: INSERT_FIRST, value: {name: first, direct_response: {status: 204}, match: {prefix: /}}}
`), Proxy{})
		if r := res.Routes[0].GetVirtualHosts()[0].GetRoutes()[0]; r.GetName() == "first" {
			t.Error("the route was inserted")
		}
	})
	t.Run("a proxy version match needs a version", func(t *testing.T) {
		doc := efPatches("v", `  - applyTo: CLUSTER
    match: {proxy: {proxyVersion: ".*"}, cluster: {service: api.default.svc.cluster.local}}
    patch: {operation: MERGE, value: {connect_timeout: 3s}}
`)
		if got := efCluster(translateEF(t, doc, Proxy{}), api).GetConnectTimeout().AsDuration(); got != 10*time.Second {
			t.Errorf("applied to a proxy without a version: %v", got)
		}
		if got := efCluster(translateEF(t, doc, Proxy{IstioVersion: "1.24.0"}), api).GetConnectTimeout().AsDuration(); got != 3*time.Second {
			t.Errorf("not applied to 1.24.0: %v", got)
		}
	})
}

// A transport socket merged into a mesh cluster goes into its
// per-endpoint transport socket of the same name.
func TestEnvoyFilterMergeTransportSocket(t *testing.T) {
	tls := func(sni string) *corev3.TransportSocket {
		return &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{
			TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{Sni: sni}),
		}}
	}
	c := &clusterv3.Cluster{Name: "c", TransportSocketMatches: []*clusterv3.Cluster_TransportSocketMatch{
		{Name: "tlsMode-istio", TransportSocket: tls("mesh")},
		{Name: "tlsMode-disabled", TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer"}},
	}}
	mergeCluster(c, &clusterv3.Cluster{TransportSocket: tls("patched"), PerConnectionBufferLimitBytes: wrapperspb.UInt32(1)})
	if c.GetTransportSocket() != nil {
		t.Error("the cluster got a transport_socket beside its matches")
	}
	var got tlsv3.UpstreamTlsContext
	if err := c.GetTransportSocketMatches()[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&got); err != nil || got.GetSni() != "patched" {
		t.Errorf("tls match: sni %q, %v", got.GetSni(), err)
	}
	if c.GetPerConnectionBufferLimitBytes().GetValue() != 1 {
		t.Error("the rest of the patch was not merged")
	}
	// No match of that name: the patch is not applied.
	mergeCluster(c, &clusterv3.Cluster{TransportSocket: &corev3.TransportSocket{Name: "other"}, PerConnectionBufferLimitBytes: wrapperspb.UInt32(2)})
	if c.GetPerConnectionBufferLimitBytes().GetValue() != 1 {
		t.Error("a patch whose socket matches none was applied")
	}
}

// Oldest first within a priority, as istiod orders EnvoyFilters.
func TestEnvoyFilterOrderByAge(t *testing.T) {
	mk := func(name string, created time.Time) *networkingv1alpha3.EnvoyFilter {
		return &networkingv1alpha3.EnvoyFilter{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "istio-system", CreationTimestamp: metav1.NewTime(created)}}
	}
	now := time.Now()
	tr := &translator{cfg: &istio.Config{EnvoyFilters: []*networkingv1alpha3.EnvoyFilter{mk("a", now), mk("b", now.Add(-time.Hour)), mk("c", now.Add(-2*time.Hour))}}, proxy: Proxy{}.withDefaults()}
	var names []string
	for _, ef := range tr.envoyFilters() {
		names = append(names, ef.Name)
	}
	if strings.Join(names, ",") != "c,b,a" {
		t.Errorf("order %v, want c,b,a (oldest first)", names)
	}
}

// proxy.metadata matches the node's metadata; EXTENSION_CONFIG adds an
// ECDS resource.
func TestEnvoyFilterMetadataAndExtensions(t *testing.T) {
	doc := efPatches("m", `  - applyTo: CLUSTER
    match: {proxy: {metadata: {ROLE: edge}}, cluster: {service: api.default.svc.cluster.local}}
    patch: {operation: MERGE, value: {connect_timeout: 3s}}
  - applyTo: EXTENSION_CONFIG
    patch:
      operation: ADD
      value:
        name: extra-cors
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
`)
	const api = "outbound|80||api.default.svc.cluster.local"
	edge := translateEF(t, doc, Proxy{Metadata: map[string]string{"ROLE": "edge"}})
	if got := efCluster(edge, api).GetConnectTimeout().AsDuration(); got != 3*time.Second {
		t.Errorf("matching metadata: connect_timeout %v, want 3s", got)
	}
	other := translateEF(t, doc, Proxy{Metadata: map[string]string{"ROLE": "inner"}})
	if got := efCluster(other, api).GetConnectTimeout().AsDuration(); got != 10*time.Second {
		t.Errorf("other metadata: connect_timeout %v, want the default 10s", got)
	}
	if len(edge.Extensions) != 1 || edge.Extensions[0].GetName() != "extra-cors" {
		t.Errorf("extensions %v", edge.Extensions)
	}
}
