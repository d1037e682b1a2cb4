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

// One request per connection holds for HTTP/2: a PROXY protocol cluster
// (or max_requests_per_connection 1) shares no HTTP/2 connection.
func TestHTTP2OneRequestPerConnection(t *testing.T) {
	for _, c := range []struct {
		max  uint32
		want bool
	}{{1, true}, {0, false}, {100, false}} {
		cs := newClusterState(NewManager(), "c", poolSettings{maxRequests: c.max}, HTTP2, newBreakers(), nil)
		if cs.h2.DisableKeepAlives != c.want {
			t.Errorf("max requests %d: HTTP/2 keep-alives disabled %v, want %v", c.max, cs.h2.DisableKeepAlives, c.want)
		}
	}
}

// A detector the cluster replaced ejects no host: a report in flight
// when outlier detection was removed would leave it out for good.
func TestStoppedDetectorDoesNotEject(t *testing.T) {
	cs := newClusterState(NewManager(), "c", poolSettings{}, HTTP1, newBreakers(), nil)
	d := newDetector(cs, &outlierConfig{interval: time.Hour, baseEjection: time.Minute, maxEjection: time.Hour, maxEjectionPercent: 100})
	d.stop()
	h := &host{addr: "10.0.0.1:80"}
	if d.eject(h, ejectConsecutive5xx, time.Now()) || h.ejected.Load() {
		t.Error("a stopped detector ejected a host")
	}
}
