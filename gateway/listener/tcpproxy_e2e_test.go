package listener_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/waygate/waygate/conformance/backend"
	"google.golang.org/protobuf/types/known/durationpb"
)

// startTCPEchoes starts tcp-echo servers answering with their prefix and
// installs each as cluster "tcp-<prefix>".
func startTCPEchoes(t *testing.T, g *gateway, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		s, err := backend.StartTCPEcho(backend.Options{Prefix: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		g.addClusters(staticCluster("tcp-"+p, s.Addr()))
	}
}

// echoOnce sends one line on a new connection and returns the reply.
func echoOnce(addr, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestTCPProxyWeightedClusters(t *testing.T) {
	g := newGateway(t)
	startTCPEchoes(t, g, "one", "two")
	g.mustApply(resourcev3.ListenerType, newListener("tcp", "127.0.0.1:0", &listenerv3.FilterChain{
		Filters: []*listenerv3.Filter{tcpFilter(t, "tcp-one", 80, "tcp-two", 20)},
	}))
	addr := g.addr("tcp")
	const total = 1000
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				reply, err := echoOnce(addr, "hi")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts[strings.Fields(reply)[0]]++
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < total; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if counts["one"]+counts["two"] != total {
		t.Fatalf("replies %v, want %d from one and two", counts, total)
	}
	// 80% of 1000 has a standard deviation of about 13; 74-86% is
	// more than four of them either side.
	if n := counts["one"]; n < 740 || n > 860 {
		t.Errorf("%d of %d connections went to the 80%% cluster, want 740-860", n, total)
	}
}

func TestTCPProxySingleClusterAndHalfClose(t *testing.T) {
	g := newGateway(t)
	startTCPEchoes(t, g, "one")
	g.mustApply(resourcev3.ListenerType, newListener("tcp", "127.0.0.1:0", &listenerv3.FilterChain{
		Filters: []*listenerv3.Filter{tcpFilter(t, "tcp-one")},
	}))
	addr := g.addr("tcp")
	if reply, err := echoOnce(addr, "hello"); err != nil || reply != "one hello\n" {
		t.Fatalf("reply %q %v, want \"one hello\\n\"", reply, err)
	}

	// Half-close: the client ends its side without a newline and still
	// reads the reply the backend sends on seeing the end.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "first\nlast words")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after half-close: %v (got %q)", err, got)
	}
	if want := "one first\none last words"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTCPProxyUnknownCluster(t *testing.T) {
	g := newGateway(t)
	g.mustApply(resourcev3.ListenerType, newListener("tcp", "127.0.0.1:0", &listenerv3.FilterChain{
		Filters: []*listenerv3.Filter{tcpFilter(t, "missing")},
	}))
	c, err := net.DialTimeout("tcp", g.addr("tcp"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "anyone?\n")
	// Closed with the line unread, so the kernel may send a reset.
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("got %q %v, want the connection closed", b, err)
	}
}

// startSink accepts connections, reads each to its end, then answers
// with the number of bytes it read: an upstream that stays silent while
// the client sends.
func startSink(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				fmt.Fprintf(c, "got %d\n", n)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTCPProxyIdleTimeout(t *testing.T) {
	g := newGateway(t)
	startTCPEchoes(t, g, "one")
	g.mustApply(resourcev3.ClusterType, staticCluster("tcp-one", startSink(t)))
	p := &tcpv3.TcpProxy{
		StatPrefix:       "tcp",
		ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "tcp-one"},
		IdleTimeout:      durationpb.New(300 * time.Millisecond),
	}
	g.mustApply(resourcev3.ListenerType, newListener("tcp", "127.0.0.1:0", &listenerv3.FilterChain{
		Filters: []*listenerv3.Filter{{Name: "tcp", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, p)}}},
	}))

	t.Run("traffic one way keeps the connection", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", g.addr("tcp"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		for i := 0; i < 15; i++ {
			if _, err := c.Write([]byte{'x'}); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			time.Sleep(60 * time.Millisecond)
		}
		c.(*net.TCPConn).CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != "got 15\n" {
			t.Errorf("got %q %v, want \"got 15\\n\"", b, err)
		}
	})

	t.Run("silence both ways closes it", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", g.addr("tcp"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("read: %v, want the connection closed by the idle timeout", err)
		}
		// The sink answers the end of the stream it saw.
		if string(b) != "" && string(b) != "got 0\n" {
			t.Errorf("got %q", b)
		}
	})
}

// startTLSEcho is a TLS server presenting kp that answers each line
// with name and the line.
func startTLSEcho(t *testing.T, name string, kp keyPair) string {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp.pair(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprintf(c, "%s %s", name, line)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// tlsEchoOnce sends one line over TLS with sni and returns the reply and
// the certificate the far end presented.
func tlsEchoOnce(addr, sni string, roots *x509.CertPool, line string) (string, *x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: sni, RootCAs: roots})
	if err != nil {
		return "", nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", nil, err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	return reply, c.ConnectionState().PeerCertificates[0], err
}

// TestTLSPassthroughBySNI is Istio's Gateway tls.mode PASSTHROUGH: the
// chain is chosen by the ClientHello's SNI and the TLS bytes, hello
// included, go to the backend untouched.
func TestTLSPassthroughBySNI(t *testing.T) {
	g := newGateway(t)
	ca := newCA(t, "test CA")
	a := issue(t, &ca, "backend a", false, "a.example.com")
	b := issue(t, &ca, "backend b", false, "b.example.com")
	g.mustApply(resourcev3.ClusterType,
		staticCluster("a", startTLSEcho(t, "a", a)),
		staticCluster("b", startTLSEcho(t, "b", b)))
	g.mustApply(resourcev3.ListenerType, newListener("passthrough", "127.0.0.1:0",
		&listenerv3.FilterChain{
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"a.example.com"}},
			Filters:          []*listenerv3.Filter{tcpFilter(t, "a")},
		},
		&listenerv3.FilterChain{
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"b.example.com"}},
			Filters:          []*listenerv3.Filter{tcpFilter(t, "b")},
		},
	))
	addr := g.addr("passthrough")
	for _, name := range []string{"a", "b"} {
		reply, cert, err := tlsEchoOnce(addr, name+".example.com", ca.pool(), "hello")
		if err != nil {
			t.Fatalf("%s.example.com: %v", name, err)
		}
		if reply != name+" hello\n" || cert.Subject.CommonName != "backend "+name {
			t.Errorf("%s.example.com: reply %q from %q", name, reply, cert.Subject.CommonName)
		}
	}
	if _, _, err := tlsEchoOnce(addr, "c.example.com", ca.pool(), "hello"); err == nil {
		t.Error("a name no chain serves was passed through")
	}
}

// TestTLSTerminatedTCPProxy is a Gateway in tls.mode SIMPLE with a tcp
// route: the gateway ends TLS and proxies the plaintext.
func TestTLSTerminatedTCPProxy(t *testing.T) {
	g := newGateway(t)
	startTCPEchoes(t, g, "one")
	ca := newCA(t, "test CA")
	cert := issue(t, &ca, "gw", false, "tcp.example.com")
	g.mustApply(resourcev3.ListenerType, newListener("tls-tcp", "127.0.0.1:0", &listenerv3.FilterChain{
		TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificates: []*tlsv3.TlsCertificate{cert.tlsCertificate()},
		}}),
		Filters: []*listenerv3.Filter{tcpFilter(t, "tcp-one")},
	}))
	reply, served, err := tlsEchoOnce(g.addr("tls-tcp"), "tcp.example.com", ca.pool(), "hello")
	if err != nil || reply != "one hello\n" || served.Subject.CommonName != "gw" {
		t.Errorf("reply %q %v from %v, want \"one hello\\n\" from the gateway's certificate", reply, err, served)
	}
}

// A manager without a view (no snapshot yet) ends TCP proxy connections
// instead of crashing.
func TestTCPProxyWithoutView(t *testing.T) {
	g := newGateway(t)
	g.m.Views = nil
	g.mustApply(resourcev3.ListenerType, newListener("tcp", "127.0.0.1:0", &listenerv3.FilterChain{
		Filters: []*listenerv3.Filter{tcpFilter(t, "tcp-one")},
	}))
	if reply, err := echoOnce(g.addr("tcp"), "hello"); err == nil || reply != "" {
		t.Errorf("got %q %v, want the connection closed", reply, err)
	}
}

// startGreeter is a server-first service (SMTP, MySQL): it greets each
// connection before reading anything.
func startGreeter(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "220 greeter ready\n")
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// TestServerFirstProtocolAfterInspection: on a listener that inspects
// connections (here for SNI), a client waiting for the server to speak
// first reaches the default chain once listener_filters_timeout passes,
// if continue_on_listener_filters_timeout says so, and is closed if not.
func TestServerFirstProtocolAfterInspection(t *testing.T) {
	g := newGateway(t)
	g.addClusters(staticCluster("greeter", startGreeter(t)))
	ca := newCA(t, "test CA")
	cert := issue(t, &ca, "a", false, "a.example.com")
	listenerWith := func(cont bool) *listenerv3.Listener {
		l := newListener("mixed", "127.0.0.1:0", &listenerv3.FilterChain{
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"a.example.com"}},
			TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsCertificates: []*tlsv3.TlsCertificate{cert.tlsCertificate()},
			}}),
			Filters: []*listenerv3.Filter{tcpFilter(t, "greeter")},
		})
		l.DefaultFilterChain = &listenerv3.FilterChain{Filters: []*listenerv3.Filter{tcpFilter(t, "greeter")}}
		l.ListenerFiltersTimeout = durationpb.New(200 * time.Millisecond)
		l.ContinueOnListenerFiltersTimeout = cont
		return l
	}
	for _, cont := range []bool{true, false} {
		t.Run(fmt.Sprintf("continue %v", cont), func(t *testing.T) {
			g.mustApply(resourcev3.ListenerType, listenerWith(cont))
			c, err := net.DialTimeout("tcp", g.addr("mixed"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if cont && line != "220 greeter ready\n" {
				t.Errorf("got %q %v, want the greeting", line, err)
			}
			if !cont && (line != "" || errors.Is(err, os.ErrDeadlineExceeded)) {
				t.Errorf("got %q %v, want the connection closed at the timeout", line, err)
			}
		})
	}
}
