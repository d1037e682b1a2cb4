package upstream

import (
	"net"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
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

// connection_keepalive of the HTTP/2 options has the cluster's HTTP/2
// connections send PINGs when idle and close when one goes unanswered.
func TestHTTP2KeepAlive(t *testing.T) {
	opts, err := anypb.New(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{ConnectionKeepalive: &corev3.KeepaliveSettings{
				Interval: durationpb.New(30 * time.Second), Timeout: durationpb.New(5 * time.Second),
			}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cl := &clusterv3.Cluster{TypedExtensionProtocolOptions: map[string]*anypb.Any{httpOptionsKey: opts}}
	s, err := settingsOf(cl, time.Second)
	if err != nil || s.pingInterval != 30*time.Second || s.pingTimeout != 5*time.Second {
		t.Fatalf("settings %+v, %v", s, err)
	}
	cs := newClusterState(NewManager(), "c", s, HTTP2, newBreakers(), nil)
	if h := cs.h2.HTTP2; h == nil || h.SendPingTimeout != 30*time.Second || h.PingTimeout != 5*time.Second {
		t.Errorf("the HTTP/2 transport's config %+v", h)
	}
}
