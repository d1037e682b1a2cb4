package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	netwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// networkWasmListener is a TCP listener on port whose chain runs the
// network Wasm plugin at path, configured with conf, before a tcp_proxy
// to cluster "echo".
func networkWasmListener(t *testing.T, port int, path, conf string) *listenerv3.Listener {
	cfg, err := anypb.New(wrapperspb.String(conf))
	if err != nil {
		t.Fatal(err)
	}
	w, err := anypb.New(&netwasmv3.Wasm{Config: &wasmv3.PluginConfig{
		Name:          "tcp-plugin",
		Configuration: cfg,
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			VmId:    "tcp-plugin",
			Runtime: "envoy.wasm.runtime.v8",
			Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
				Specifier: &corev3.DataSource_Filename{Filename: path},
			}}},
		}},
		// FAIL_CLOSE: a connection whose plugin crashed is closed.
		FailurePolicy: wasmv3.FailurePolicy_FAIL_CLOSED,
	}})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := anypb.New(&tcpv3.TcpProxy{StatPrefix: "echo", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "echo"}})
	if err != nil {
		t.Fatal(err)
	}
	return &listenerv3.Listener{
		Name:    "tcp_echo",
		Address: sockAddr("127.0.0.1", port),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{
			{Name: "envoy.filters.network.wasm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: w}},
			{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: tp}},
		}}},
	}
}

// TestProxyNetworkWasmPlugin runs a TCP Wasm plugin in `waygate proxy`
// fed by an xDS server: it rewrites data both ways between clients and
// a TCP echo backend, rewrites the bytes of plaintext HTTP before the
// connection manager, counts bytes in metrics the admin server shows,
// closes a connection on its marker, and a crash closes only the
// connections of the crashed instance while the gateway serves on. A
// config the plugin refuses is NACKed and the last good one serves on.
func TestProxyNetworkWasmPlugin(t *testing.T) {
	plugin := buildNetworkPlugin(t)
	echoAddr := startTCPByteEcho(t)
	port := freePort(t)
	web := startBackend(t, "web", "v1")
	httpPort := freePort(t)
	resources := func(conf string) map[resourcev3.Type][]types.Resource {
		// A plaintext HTTP listener runs the plugin too, before its
		// connection manager.
		hl := httpListener("http_web", httpPort, "web")
		hl.FilterChains[0].Filters = append(networkWasmListener(t, port, plugin, "upper").FilterChains[0].Filters[:1], hl.FilterChains[0].Filters...)
		return map[resourcev3.Type][]types.Resource{
			resourcev3.ListenerType: {networkWasmListener(t, port, plugin, conf), hl},
			resourcev3.RouteType: {&routev3.RouteConfiguration{Name: "web", VirtualHosts: []*routev3.VirtualHost{{
				Name: "all", Domains: []string{"*"},
				Routes: []*routev3.Route{{Match: prefix("/"), Action: toCluster("web")}},
			}}}},
			resourcev3.ClusterType:  {edsCluster("echo"), edsCluster("web")},
			resourcev3.EndpointType: {assignment("echo", echoAddr), assignment("web", web.Addr())},
		}
	}
	xds := startXDS(t)
	xds.push(t, "node-tcp", "1", resources("upper rot13"))
	p := startProxy(t, xds.addr, "node-tcp")
	p.waitReady(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	dial := func() net.Conn {
		t.Helper()
		var c net.Conn
		waitFor(t, func() bool {
			var err error
			c, err = net.DialTimeout("tcp", addr, time.Second)
			return err == nil
		})
		c.SetDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	exchange := func(c net.Conn, send string, n int) (string, error) {
		if _, err := io.WriteString(c, send); err != nil {
			return "", err
		}
		b := make([]byte, n)
		k, err := io.ReadFull(c, b)
		return string(b[:k]), err
	}

	// Rewritten both ways, on many connections at once.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial()
			for j := range 3 {
				// "hello i j" goes up as "HELLO I J" and comes back
				// rotated by 13.
				msg := fmt.Sprintf("hello %c %c\n", 'a'+i, 'a'+j)
				want := string(tcpRot13(strings.ToUpper(msg)))
				if got, err := exchange(c, msg, len(msg)); got != want {
					t.Errorf("sent %q: got %q, %v; want %q", msg, got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	const sent = 8 * 3 * 10
	_, body := get(t, http.DefaultClient, "http://"+p.admin+"/stats", nil)
	for _, want := range []string{
		fmt.Sprintf("wasmcustom.tcp_downstream_bytes: %d", sent),
		fmt.Sprintf("wasmcustom.tcp_upstream_bytes: %d", sent),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/stats lacks %q:\n%s", want, grepLines(string(body), "wasm"))
		}
	}

	// Before the HTTP connection manager, it upper-cases the request's
	// bytes: the backend sees the path in capitals.
	var e echo
	waitFor(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/some/path", httpPort))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && json.Unmarshal(b, &e) == nil
	})
	if e.Path != "/SOME/PATH" {
		t.Errorf("the backend saw path %q through the plugin, want %q", e.Path, "/SOME/PATH")
	}

	// The plugin closes a connection on its marker.
	c := dial()
	io.WriteString(c, "QUIT")
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Errorf("after QUIT read %q, %v; want the connection closed", b, err)
	}

	// A crash closes the crashing connection (FAIL_CLOSE); the gateway
	// starts a fresh instance and serves new connections with it.
	c = dial()
	io.WriteString(c, "CRASH")
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("after CRASH read %q; want the connection closed", b)
	}
	if got, err := exchange(dial(), "again", 5); got != "NTNVA" {
		t.Errorf("after the crash: %q, %v", got, err)
	}
	if !strings.Contains(p.out.String(), "wasm plugin instance failed") {
		t.Error("the crash was not logged")
	}

	// A configuration the plugin refuses is NACKed, naming the filter;
	// the plugin keeps serving with the last good one.
	nacks := xds.nackCount()
	xds.push(t, "node-tcp", "2", resources("sideways"))
	waitFor(t, func() bool { return xds.nackCount() > nacks })
	if n := xds.lastNACK(); !strings.Contains(n, `filters[0] "envoy.filters.network.wasm"`) || !strings.Contains(n, `unknown word "sideways"`) {
		t.Errorf("NACK %q does not name the filter and the plugin's reason", n)
	}
	if got, err := exchange(dial(), "still", 5); got != "FGVYY" {
		t.Errorf("after the NACK: %q, %v", got, err)
	}
}

// tcpRot13 rotates the letters of s by 13, as the plugin does.
func tcpRot13(s string) []byte {
	out := []byte(s)
	for i, c := range out {
		switch {
		case c >= 'a' && c <= 'z':
			out[i] = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			out[i] = 'A' + (c-'A'+13)%26
		}
	}
	return out
}
