package upstream

import (
	"net"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestKeepAliveOf(t *testing.T) {
	for _, c := range []struct {
		name string
		ka   *corev3.TcpKeepalive
		want net.KeepAliveConfig
	}{
		{"none: the gateway's default", nil, defaultKeepAlive},
		{"all set", &corev3.TcpKeepalive{KeepaliveTime: wrapperspb.UInt32(60), KeepaliveInterval: wrapperspb.UInt32(10), KeepaliveProbes: wrapperspb.UInt32(3)},
			net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: 10 * time.Second, Count: 3}},
		{"unset fields: the system's", &corev3.TcpKeepalive{KeepaliveTime: wrapperspb.UInt32(300)},
			net.KeepAliveConfig{Enable: true, Idle: 5 * time.Minute, Interval: 75 * time.Second, Count: 9}},
	} {
		cl := &clusterv3.Cluster{}
		if c.ka != nil {
			cl.UpstreamConnectionOptions = &clusterv3.UpstreamConnectionOptions{TcpKeepalive: c.ka}
		}
		s, err := settingsOf(cl, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if s.keepAlive != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, s.keepAlive, c.want)
		}
	}
}
