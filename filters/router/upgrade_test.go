package router_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// startUpgradeEcho answers an Upgrade: websocket request with 101 and
// then echoes every byte; other requests get 200 "plain".
func startUpgradeEcho(t *testing.T) string {
	return startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			io.WriteString(w, "plain")
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw)
	})
}

func TestUpgrade(t *testing.T) {
	up := startUpgradeEcho(t)
	tests := []struct {
		name    string
		enabled bool
		want    string // the status line the client reads
	}{
		{"an enabled upgrade is spliced", true, "HTTP/1.1 101 Switching Protocols\r\n"},
		{"an upgrade the listener does not allow is an ordinary request", false, "HTTP/1.1 200 OK\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hcmtest.HCM(t, hcmtest.Routes(route("/", "ws", nil)))
			if tt.enabled {
				m.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
			}
			gw := hcmtest.Start(t, hcmtest.Options{HCM: m, Clusters: []*clusterv3.Cluster{hcmtest.StaticCluster("ws", up)}})
			c, err := net.Dial("tcp", gw.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil || line != tt.want {
				t.Fatalf("status line %q, %v; want %q", line, err, tt.want)
			}
			if !tt.enabled {
				return
			}
			for { // the rest of the head
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if l == "\r\n" {
					break
				}
			}
			io.WriteString(c, "ping")
			b := make([]byte, 4)
			if _, err := io.ReadFull(br, b); err != nil || string(b) != "ping" {
				t.Fatalf("echo %q, %v", b, err)
			}
		})
	}
}
