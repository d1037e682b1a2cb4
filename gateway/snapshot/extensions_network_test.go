package snapshot

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/filters"
)

// tagType configures the test network filter: a StringValue whose value
// the filter writes before every chunk the client sends.
const tagType = "type.googleapis.com/google.protobuf.StringValue"

func init() {
	filters.RegisterNetwork(tagType, func(cfg proto.Message, _ filters.Env) (filters.NetworkFactory, error) {
		return tagFactory(cfg.(*wrapperspb.StringValue).GetValue()), nil
	})
}

type tagFactory string

func (f tagFactory) NewNetworkFilter(filters.NetworkConn) filters.NetworkFilter { return tagFilter(f) }

type tagFilter string

func (tagFilter) OnNewConnection() filters.Status { return filters.Continue }
func (f tagFilter) OnData(side filters.Side, data *filters.Buffer, _ bool) filters.Status {
	if side == filters.SideDownstream && data.Len() > 0 {
		data.Prepend([]byte(f))
	}
	return filters.Continue
}
func (tagFilter) OnClose(filters.Side, bool) {}
func (tagFilter) OnDone()                    {}

// A network filter configured through ECDS, before tcp_proxy: the
// listener warms until its config comes, an update applies to new
// connections on the same socket, and a config of a type no filter has
// is refused.
func TestNetworkFilterThroughECDS(t *testing.T) {
	b, port := newECDSBuilder(t)
	echo, err := backend.StartByteEcho("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	cluster := &clusterv3.Cluster{
		Name:                 "raw",
		ConnectTimeout:       durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "raw", Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(echo.Port())}}}},
			}}}},
		}}},
	}
	if err := b.Apply(resourcev3.ClusterType, map[string]*anypb.Any{"raw": mustAny(t, cluster)}); err != nil {
		t.Fatal(err)
	}
	l := &listenerv3.Listener{
		Name: "ecds",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{
			{Name: "tag", ConfigType: &listenerv3.Filter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
				ConfigSource: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
				TypeUrls:     []string{tagType},
			}}},
			{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &tcpv3.TcpProxy{
				StatPrefix: "raw", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "raw"}})}},
		}}},
	}
	if err := b.Apply(resourcev3.ListenerType, map[string]*anypb.Any{"ecds": mustAny(t, l)}); err != nil {
		t.Fatal(err)
	}
	if snap := b.Current(); snap.Warming["ecds"] == "" || b.Listeners.Addr("ecds") != "" {
		t.Fatalf("listener should warm for its network filter's config: warming %v", snap.Warming)
	}
	if got := b.Names(resourcev3.ExtensionConfigType); len(got) != 1 || got[0] != "tag" {
		t.Fatalf("ECDS subscription = %v, want [tag]", got)
	}
	roundTrip := func() string {
		t.Helper()
		c, err := net.DialTimeout("tcp", b.Listeners.Addr("ecds"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("x\n")); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(line)
	}
	if err := b.Apply(resourcev3.ExtensionConfigType, extension(t, "tag", mustAny(t, wrapperspb.String("A")))); err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(); got != "Ax" {
		t.Fatalf("echo = %q, want Ax", got)
	}
	if err := b.Apply(resourcev3.ExtensionConfigType, extension(t, "tag", mustAny(t, wrapperspb.String("B")))); err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(); got != "Bx" {
		t.Fatalf("echo after the update = %q, want Bx", got)
	}
	err = b.Apply(resourcev3.ExtensionConfigType, extension(t, "tag", mustAny(t, wrapperspb.Bytes([]byte("C")))))
	if err == nil || !strings.Contains(err.Error(), `extension config "tag": typed_config: unknown filter config type type.googleapis.com/google.protobuf.BytesValue`) {
		t.Errorf("error = %v", err)
	}
	if got := roundTrip(); got != "Bx" {
		t.Errorf("echo after a refused update = %q, want Bx", got)
	}
}
