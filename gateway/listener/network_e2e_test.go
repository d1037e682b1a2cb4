package listener_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/tcpproxy"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// scriptTypeURL configures the test network filter: a StringValue
// whose value says what the filter does (see scriptFilter).
const scriptTypeURL = "type.googleapis.com/google.protobuf.StringValue"

// scriptEvents records the callbacks of script filters, by tag.
var scriptEvents struct {
	sync.Mutex
	log []string
}

func recordEvent(e string) {
	scriptEvents.Lock()
	scriptEvents.log = append(scriptEvents.log, e)
	scriptEvents.Unlock()
}

var tags atomic.Int64

// uniqueTag tags the filters of one test run, whose events then do not
// mix with other runs'.
func uniqueTag(prefix string) string { return fmt.Sprintf("%s%d", prefix, tags.Add(1)) }

func eventsWith(tag string) []string {
	scriptEvents.Lock()
	defer scriptEvents.Unlock()
	var out []string
	for _, e := range scriptEvents.log {
		if strings.HasPrefix(e, tag+" ") {
			out = append(out, e)
		}
	}
	return out
}

func init() {
	filters.RegisterNetwork(scriptTypeURL, func(cfg proto.Message, _ filters.Env) (filters.NetworkFactory, error) {
		mode, tag, _ := strings.Cut(cfg.(*wrapperspb.StringValue).GetValue(), ":")
		return scriptFactory{mode: mode, tag: tag}, nil
	})
}

type scriptFactory struct{ mode, tag string }

func (f scriptFactory) NewNetworkFilter(c filters.NetworkConn) filters.NetworkFilter {
	return &scriptFilter{mode: f.mode, tag: f.tag, c: c}
}

// scriptFilter is a network filter whose mode is one of:
//
//	tag    prefixes each chunk both ways with its tag
//	line   holds downstream data until it holds a newline
//	hoard  holds downstream data until the end of stream
//	later  holds every downstream chunk and passes it on 20ms later
//	gate   holds the connection's start for 30ms
//	swap   rewrites "/old/" going up and "web" coming back (HTTP)
//	close  closes the connection on a chunk holding "BYE"
//	panic  panics on a chunk holding "PANIC"
type scriptFilter struct {
	mode, tag string
	c         filters.NetworkConn
}

func (f *scriptFilter) OnNewConnection() filters.Status {
	recordEvent(f.tag + " new")
	if f.mode == "gate" {
		time.AfterFunc(30*time.Millisecond, func() { f.c.Continue(filters.SideDownstream) })
		return filters.StopAndBuffer
	}
	return filters.Continue
}

func (f *scriptFilter) OnData(side filters.Side, data *filters.Buffer, end bool) filters.Status {
	switch f.mode {
	case "tag":
		if data.Len() > 0 {
			data.Prepend([]byte(f.tag))
		}
	case "line":
		if side == filters.SideDownstream && !end && !bytes.Contains(data.Bytes(), []byte("\n")) {
			return filters.StopAndBuffer
		}
	case "hoard":
		if side == filters.SideDownstream && !end {
			return filters.StopAndBuffer
		}
	case "later":
		if side == filters.SideDownstream {
			time.AfterFunc(20*time.Millisecond, func() { f.c.Continue(side) })
			return filters.StopAndBuffer
		}
	case "swap":
		// Same-length rewrites, so HTTP framing holds.
		from, to := "/old/", "/new/"
		if side == filters.SideUpstream {
			from, to = `"web"`, `"WEB"`
		}
		data.Set(bytes.ReplaceAll(data.Bytes(), []byte(from), []byte(to)))
	case "close":
		if bytes.Contains(data.Bytes(), []byte("BYE")) {
			return filters.Stop
		}
	case "panic":
		if bytes.Contains(data.Bytes(), []byte("PANIC")) {
			panic("test filter panic")
		}
	}
	return filters.Continue
}

func (f *scriptFilter) OnClose(side filters.Side, byPeer bool) {
	who := "gateway"
	if byPeer {
		who = "peer"
	}
	recordEvent(f.tag + " close " + side.String() + " by " + who)
}

func (f *scriptFilter) OnDone() { recordEvent(f.tag + " done") }

// startRawEcho starts a backend that writes back every byte it reads
// and installs it as cluster "raw-echo".
func startRawEcho(t *testing.T, g *gateway) {
	t.Helper()
	s, err := backend.StartByteEcho("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	g.addClusters(staticCluster("raw-echo", s.Addr()))
}

func scriptFilterOf(t testing.TB, value string) *listenerv3.Filter {
	return &listenerv3.Filter{Name: "script", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, wrapperspb.String(value))}}
}

// networkGateway serves a listener "net" whose chain runs script
// filters with the given values before a tcp_proxy to a raw echo.
func networkGateway(t *testing.T, scripts ...string) string {
	g := newGateway(t)
	startRawEcho(t, g)
	var fs []*listenerv3.Filter
	for _, s := range scripts {
		fs = append(fs, scriptFilterOf(t, s))
	}
	fs = append(fs, tcpFilter(t, "raw-echo"))
	g.mustApply(resourcev3.ListenerType, newListener("net", "127.0.0.1:0", &listenerv3.FilterChain{Filters: fs}))
	return g.addr("net")
}

func dialNet(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// readN reads exactly n bytes.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

func TestNetworkFiltersRunInOrderBothWays(t *testing.T) {
	addr := networkGateway(t, "tag:A", "tag:B")
	c := dialNet(t, addr)
	io.WriteString(c, "hi")
	// Downstream data meets A then B; the echo comes back through B
	// then A, as Envoy runs write filters in reverse order.
	if got := readN(t, c, 6); got != "ABBAhi" {
		t.Errorf("echo %q, want %q", got, "ABBAhi")
	}
}

func TestNetworkFilterHoldsUntilLine(t *testing.T) {
	addr := networkGateway(t, "line:L")
	c := dialNet(t, addr)
	io.WriteString(c, "par")
	time.Sleep(50 * time.Millisecond)
	io.WriteString(c, "tial\n")
	if got := readN(t, c, 8); got != "partial\n" {
		t.Errorf("echo %q, want the held bytes and the rest in one piece", got)
	}
	// A half-close passes what is held on, with the end of stream.
	io.WriteString(c, "tail")
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "tail" {
		t.Errorf("after half-close read %q, %v; want %q", rest, err, "tail")
	}
}

// A filter may hold up to the buffer limit; past it the connection
// closes rather than wait for data the filter will never see.
func TestNetworkFilterHeldLimit(t *testing.T) {
	addr := networkGateway(t, "hoard:B")
	small := dialNet(t, addr)
	io.WriteString(small, "kept until the end")
	small.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(small); string(b) != "kept until the end" || err != nil {
		t.Errorf("held data came back as %q, %v", b, err)
	}

	big := dialNet(t, addr)
	go big.Write(make([]byte, tcpproxy.HeldLimit+64<<10))
	if b, _ := io.ReadAll(big); len(b) != 0 {
		t.Errorf("read %d bytes, want the connection closed", len(b))
	}
}

func TestNetworkFilterContinuesLater(t *testing.T) {
	addr := networkGateway(t, "later:W", "tag:T")
	// Timed from before the dial: the gateway may accept, and start
	// holding, before the dial returns here.
	start := time.Now()
	c := dialNet(t, addr)
	io.WriteString(c, "x")
	// W holds "x" and passes it on to T 20ms later: T tags it going
	// up and again coming back.
	if got := readN(t, c, 3); got != "TTx" {
		t.Errorf("echo %q, want %q", got, "TTx")
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("echo after %v, before the filter continued", d)
	}
}

func TestNetworkFilterHoldsStart(t *testing.T) {
	tag := uniqueTag("G")
	addr := networkGateway(t, "gate:"+tag, "tag:"+tag+"n")
	// Timed from before the dial: the gateway may accept, and start
	// holding, before the dial returns here.
	start := time.Now()
	c := dialNet(t, addr)
	io.WriteString(c, "x")
	want := tag + "n" + tag + "n" + "x"
	if got := readN(t, c, len(want)); got != want {
		t.Errorf("echo %q, want %q", got, want)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("echo after %v, before the filter let the connection start", d)
	}
	// The next filter started only once the first one let it.
	waitEvent(t, tag, tag+" new")
	if ev := eventsWith(tag + "n"); len(ev) == 0 || ev[0] != tag+"n new" {
		t.Errorf("second filter's events %q", ev)
	}
}

func TestNetworkFilterClosesConnection(t *testing.T) {
	tag := uniqueTag("C")
	addr := networkGateway(t, "close:"+tag)
	c := dialNet(t, addr)
	io.WriteString(c, "one")
	if got := readN(t, c, 3); got != "one" {
		t.Fatalf("echo %q", got)
	}
	io.WriteString(c, "BYE")
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Errorf("after BYE read %q, %v; want the connection closed", b, err)
	}
	waitEvents(t, tag, tag+" new", tag+" close downstream by gateway", tag+" close upstream by gateway", tag+" done")
}

func TestNetworkFilterSeesPeerClose(t *testing.T) {
	tag := uniqueTag("P")
	addr := networkGateway(t, "tag:"+tag)
	c := dialNet(t, addr)
	io.WriteString(c, "a")
	readN(t, c, 1+2*len(tag))
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(c)
	waitEvents(t, tag, tag+" new", tag+" close downstream by peer", tag+" close upstream by peer", tag+" done")
}

func TestNetworkFilterPanicClosesOnlyItsConnection(t *testing.T) {
	addr := networkGateway(t, "panic:X")
	other := dialNet(t, addr)
	io.WriteString(other, "ok")
	readN(t, other, 2)

	c := dialNet(t, addr)
	io.WriteString(c, "PANIC")
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("the panicking connection got %q", b)
	}
	io.WriteString(other, "still")
	if got := readN(t, other, 5); got != "still" {
		t.Errorf("other connection echo %q", got)
	}
	fresh := dialNet(t, addr)
	io.WriteString(fresh, "new")
	if got := readN(t, fresh, 3); got != "new" {
		t.Errorf("new connection echo %q", got)
	}
}

// Network filters before an HTTP connection manager see and change the
// bytes of the plaintext requests and responses of every request of a
// connection, and can close it.
func TestNetworkFiltersBeforeHTTP(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	tag := uniqueTag("H")
	g.mustApply(resourcev3.ListenerType, newListener("http", "127.0.0.1:0", &listenerv3.FilterChain{Filters: []*listenerv3.Filter{
		scriptFilterOf(t, "swap:"+tag),
		scriptFilterOf(t, "close:"+tag+"c"),
		httpFilter(t, "web"),
	}}))
	base := "http://" + g.addr("http")
	keepAlive := &http.Client{Timeout: 10 * time.Second}
	for i := range 3 {
		resp, e := get(t, keepAlive, fmt.Sprintf("%s/old/%d", base, i))
		if resp.StatusCode != 200 || e.Path != fmt.Sprintf("/new/%d", i) || e.Service != "WEB" {
			t.Errorf("request %d: %d, backend saw path %q, answered as service %q", i, resp.StatusCode, e.Path, e.Service)
		}
	}
	// HTTP/2 with prior knowledge goes through them too (its headers
	// are compressed, so the swap finds nothing to rewrite there).
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &p}}
	defer h2c.CloseIdleConnections()
	for i := range 2 {
		resp, e := get(t, h2c, fmt.Sprintf("%s/h2c/%d", base, i))
		if resp.Proto != "HTTP/2.0" || resp.StatusCode != 200 || e.Service != "WEB" {
			t.Errorf("h2c request %d: %s %d from %q", i, resp.Proto, resp.StatusCode, e.Service)
		}
	}
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Header.Set("X-Say", "BYE")
	if resp, err := plainClient().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("a request the filter closes the connection on got %d", resp.StatusCode)
	}
	// The keep-alive connection is still open; the other one was closed.
	waitEvent(t, tag+"c", tag+"c close downstream by gateway")
	keepAlive.CloseIdleConnections()
	waitEvent(t, tag+"c", tag+"c close downstream by peer")
}

// waitEvent waits for the script filters tagged tag to have recorded e.
func waitEvent(t *testing.T, tag, e string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(eventsWith(tag), e) {
		if time.Now().After(deadline) {
			t.Fatalf("events %q lack %q", eventsWith(tag), e)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Behind TLS, network filters before the connection manager see the
// decrypted bytes; requests still know they came over TLS, and ALPN
// still picks HTTP/2.
func TestNetworkFiltersBeforeHTTPOverTLS(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	ca := newCA(t, "test CA")
	cert := issue(t, &ca, "gw", false, "gw.example.com")
	g.mustApply(resourcev3.ListenerType, newListener("https", "127.0.0.1:0", &listenerv3.FilterChain{
		TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificates: []*tlsv3.TlsCertificate{cert.tlsCertificate()},
			AlpnProtocols:   []string{"h2", "http/1.1"},
		}}),
		Filters: []*listenerv3.Filter{scriptFilterOf(t, "swap:"+uniqueTag("S")), httpFilter(t, "web")},
	}))
	base := "https://gw.example.com:" + strings.Split(g.addr("https"), ":")[1]
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, g.addr("https"))
	}
	h1 := tlsClient(ca.pool(), "gw.example.com")
	h1.Transport.(*http.Transport).DialContext = dial
	resp, e := get(t, h1, base+"/old/1")
	if resp.StatusCode != 200 || e.Path != "/new/1" || e.Service != "WEB" || resp.Proto != "HTTP/1.1" {
		t.Errorf("HTTP/1.1 over TLS: %s %d, backend saw path %q, answered as %q", resp.Proto, resp.StatusCode, e.Path, e.Service)
	}
	if got := e.Headers["x-forwarded-proto"]; got != "https" {
		t.Errorf("x-forwarded-proto %q, want https", got)
	}
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:       dial,
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{RootCAs: ca.pool(), ServerName: "gw.example.com"},
	}}
	defer h2.CloseIdleConnections()
	resp, e = get(t, h2, base+"/h2")
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || e.Service != "WEB" {
		t.Errorf("HTTP/2 over TLS: %s %d from %q", resp.Proto, resp.StatusCode, e.Service)
	}
}

// Istio's telemetry network filters in a TCP chain are accepted and do
// nothing, beside a network filter that does something.
func TestIstioTelemetryNetworkFiltersAreNoops(t *testing.T) {
	g := newGateway(t)
	startRawEcho(t, g)
	istio := func(name, typeURL string) *listenerv3.Filter {
		return &listenerv3.Filter{Name: name, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: typeURL}}}
	}
	g.mustApply(resourcev3.ListenerType, newListener("istio", "127.0.0.1:0", &listenerv3.FilterChain{Filters: []*listenerv3.Filter{
		istio("istio.metadata_exchange", "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange"),
		scriptFilterOf(t, "tag:I"),
		istio("istio.stats", "type.googleapis.com/stats.PluginConfig"),
		tcpFilter(t, "raw-echo"),
	}}))
	c := dialNet(t, g.addr("istio"))
	io.WriteString(c, "x")
	if got := readN(t, c, 3); got != "IIx" {
		t.Errorf("echo %q, want %q", got, "IIx")
	}
}

func TestNetworkFilterChainErrors(t *testing.T) {
	g := newGateway(t)
	unknown := &listenerv3.Filter{Name: "mystery", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, wrapperspb.Bool(true))}}
	tests := []struct {
		name    string
		filters []*listenerv3.Filter
		err     string
	}{
		{"unknown network filter", []*listenerv3.Filter{unknown, tcpFilter(t, "x")}, `filters[0] "mystery".typed_config: network filter type.googleapis.com/google.protobuf.BoolValue is not supported`},
		{"after the tcp proxy", []*listenerv3.Filter{tcpFilter(t, "x"), scriptFilterOf(t, "tag:H")}, `filters[0] "envoy.filters.network.tcp_proxy": a terminal filter must be the last of the chain`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := g.apply(resourcev3.ListenerType, newListener("bad", "127.0.0.1:0", &listenerv3.FilterChain{Filters: tt.filters}))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

// waitEvents waits for the script filters tagged tag to have recorded
// exactly want, in order.
func waitEvents(t *testing.T, tag string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := eventsWith(tag)
		if strings.Join(got, "|") == strings.Join(want, "|") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %q, want %q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
