package listener_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// websocketAccept is Sec-WebSocket-Accept for key (RFC 6455 section 4.2.2).
func websocketAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// startWebSocketBackend accepts WebSocket upgrades and then echoes raw
// bytes; a request without an upgrade is answered with the Upgrade and
// Connection headers it arrived with.
func startWebSocketBackend(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			fmt.Fprintf(w, "upgrade=%q connection=%q", r.Header.Get("Upgrade"), r.Header.Get("Connection"))
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			websocketAccept(r.Header.Get("Sec-WebSocket-Key")))
		brw.Flush()
		buf := make([]byte, 4096)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestWebSocketUpgrade(t *testing.T) {
	g := newGateway(t)
	g.mustApply(resourcev3.ClusterType, staticCluster("ws", startWebSocketBackend(t)))
	g.mustApply(resourcev3.RouteType, routeAll("ws", "ws"))
	listenerWith := func(upgrades ...string) *listenerv3.Listener {
		return newListener("http", "127.0.0.1:0", &listenerv3.FilterChain{
			Filters: []*listenerv3.Filter{httpFilter(t, "ws", func(m *hcmv3.HttpConnectionManager) {
				for _, u := range upgrades {
					m.UpgradeConfigs = append(m.UpgradeConfigs, &hcmv3.HttpConnectionManager_UpgradeConfig{UpgradeType: u})
				}
			})},
		})
	}
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	request := "GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"

	t.Run("allowed", func(t *testing.T) {
		g.mustApply(resourcev3.ListenerType, listenerWith("websocket"))
		c, err := net.DialTimeout("tcp", g.addr("http"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, request)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("got %d %q, want 101", resp.StatusCode, b)
		}
		if got, want := resp.Header.Get("Sec-WebSocket-Accept"), websocketAccept(key); got != want {
			t.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
		}
		if got := resp.Header.Get("Upgrade"); got != "websocket" {
			t.Errorf("Upgrade %q, want websocket", got)
		}
		for _, msg := range []string{"hello", "a second message, after the first came back"} {
			io.WriteString(c, msg)
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(br, buf); err != nil {
				t.Fatalf("echo of %q: %v", msg, err)
			}
			if string(buf) != msg {
				t.Errorf("echo %q, want %q", buf, msg)
			}
		}
	})

	t.Run("not configured", func(t *testing.T) {
		g.mustApply(resourcev3.ListenerType, listenerWith())
		c, err := net.DialTimeout("tcp", g.addr("http"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, request)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(b) != `upgrade="" connection=""` {
			t.Errorf("got %d %q, want 200 with the upgrade headers stripped before the backend", resp.StatusCode, b)
		}
	})
}

func TestDrainClosesUpgradedConnectionsAtDeadline(t *testing.T) {
	g := newGateway(t)
	g.mustApply(resourcev3.ClusterType, staticCluster("ws", startWebSocketBackend(t)))
	g.mustApply(resourcev3.RouteType, routeAll("ws", "ws"))
	g.mustApply(resourcev3.ListenerType, newListener("http", "127.0.0.1:0", &listenerv3.FilterChain{
		Filters: []*listenerv3.Filter{httpFilter(t, "ws", func(m *hcmv3.HttpConnectionManager) {
			m.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
		})},
	}))
	c, err := net.DialTimeout("tcp", g.addr("http"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	g.m.Drain(ctx)
	if n, err := br.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read after drain: %d bytes, %v; want the upgraded connection closed", n, err)
	}
}
