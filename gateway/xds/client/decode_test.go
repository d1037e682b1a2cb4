package client

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	testresource "github.com/envoyproxy/go-control-plane/pkg/test/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestResourceNameMatchesGoControlPlane checks the wire-level name reader
// against go-control-plane's GetResourceName on the unmarshalled message,
// for every type the client handles.
func TestResourceNameMatchesGoControlPlane(t *testing.T) {
	for _, m := range []proto.Message{
		testresource.MakeRouteHTTPListener(testresource.Ads, "0.0.0.0_8080", 8080, "http.8080"),
		testresource.MakeRouteConfig("http.8080", "outbound|9080|v1|reviews.default.svc.cluster.local"),
		testresource.MakeCluster(testresource.Ads, "outbound|9080|v1|reviews.default.svc.cluster.local"),
		testresource.MakeEndpoint("outbound|9080|v1|reviews.default.svc.cluster.local", 9080),
		testresource.MakeSecrets("kubernetes://bookinfo-cert", "ca")[0],
		&listenerv3.Listener{},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := resourceName(b)
		if want := cachev3.GetResourceName(m); err != nil || got != want {
			t.Errorf("%T: resourceName = %q, %v; want %q", m, got, err, want)
		}
	}
}

func TestResourceName(t *testing.T) {
	name := func(n string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), n)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
		err  string
	}{
		{name: "empty message", in: nil, want: ""},
		{name: "name only", in: name("a"), want: "a"},
		{name: "last occurrence wins", in: append(name("a"), name("b")...), want: "b"},
		{name: "other fields skipped", in: append(protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 7), name("c")...), want: "c"},
		{name: "name as varint", in: protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1), err: "wire type 0"},
		{name: "truncated name", in: name("abc")[:3], err: "unexpected EOF"},
		{name: "field number zero", in: []byte{0x02, 0x00}, err: "invalid field number"},
		{name: "invalid UTF-8", in: name("\xff"), err: "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resourceName(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestSotwItems(t *testing.T) {
	l := func(n string) *listenerv3.Listener { return &listenerv3.Listener{Name: n} }
	for _, tc := range []struct {
		name      string
		resources []*anypb.Any
		want      []string // name, or name+"~" for a heartbeat
		err       string
	}{
		{name: "plain", resources: []*anypb.Any{mustAny(t, l("a")), mustAny(t, l("b"))}, want: []string{"a", "b"}},
		{name: "envelope, body name wins", resources: []*anypb.Any{wrap(t, "alias", l("a"))}, want: []string{"a"}},
		{name: "envelope names a nameless body", resources: []*anypb.Any{wrap(t, "a", l(""))}, want: []string{"a"}},
		{name: "heartbeat", resources: []*anypb.Any{wrap(t, "a", nil)}, want: []string{"a~"}},
		{name: "empty envelope", resources: []*anypb.Any{wrap(t, "", nil)}, err: "neither name nor body"},
		{name: "nameless", resources: []*anypb.Any{mustAny(t, l(""))}, err: "without a name"},
		{name: "other type", resources: []*anypb.Any{mustAny(t, &clusterv3.Cluster{Name: "a"})}, err: "resource of type type.googleapis.com/envoy.config.cluster.v3.Cluster"},
		{name: "duplicate across envelope and plain", resources: []*anypb.Any{wrap(t, "", l("a")), mustAny(t, l("a"))}, err: `resources[1]: duplicate resource name "a"`},
		{name: "broken envelope", resources: []*anypb.Any{{TypeUrl: resourceWrapperType, Value: []byte{0xff}}}, err: "resources[0]: decoding"},
		{name: "broken body", resources: []*anypb.Any{{TypeUrl: lds, Value: []byte{0x0a, 0x05}}}, err: "resources[0]: decoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := sotwItems(&discoveryv3.DiscoveryResponse{TypeUrl: lds, Resources: tc.resources})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range items {
				if it.res == nil {
					got = append(got, it.name+"~")
				} else {
					got = append(got, it.name)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("items = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDeltaItemsNameFromEnvelope(t *testing.T) {
	items, err := deltaItems(&discoveryv3.DeltaDiscoveryResponse{
		TypeUrl: eds,
		Resources: []*discoveryv3.Resource{
			{Name: "c1", Version: "v7", Resource: mustAny(t, &endpointv3.ClusterLoadAssignment{ClusterName: "c1"})},
			{Name: "c2", Version: "v8"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].name != "c1" || items[0].version != "v7" || items[1].res != nil || items[1].version != "v8" {
		t.Fatalf("items = %+v", items)
	}
	_, err = deltaItems(&discoveryv3.DeltaDiscoveryResponse{
		TypeUrl:   sds,
		Resources: []*discoveryv3.Resource{{Resource: mustAny(t, &routev3.RouteConfiguration{Name: "r"})}},
	})
	if err == nil || !strings.Contains(err.Error(), "in a response for "+sds) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzResourceName feeds arbitrary encodings to the name reader: it must
// never panic, and whenever the bytes are a valid Listener the name it finds
// must be the one proto.Unmarshal finds.
func FuzzResourceName(f *testing.F) {
	for _, m := range []proto.Message{
		testresource.MakeRouteHTTPListener(testresource.Ads, "l", 80, "r"),
		&listenerv3.Listener{Name: "a"},
		&tlsv3.Secret{Name: "s"},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := resourceName(b)
		var l listenerv3.Listener
		if proto.Unmarshal(b, &l) != nil {
			return
		}
		if err == nil && got != l.GetName() {
			t.Fatalf("resourceName = %q, proto.Unmarshal says %q", got, l.GetName())
		}
	})
}

// FuzzSotwItems decodes arbitrary responses: errors are fine, panics are not,
// and every item decoded has a name.
func FuzzSotwItems(f *testing.F) {
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: lds, Resources: []*anypb.Any{
		mustAny(f, &listenerv3.Listener{Name: "a"}),
		wrap(f, "b", nil),
	}}
	b, _ := proto.Marshal(resp)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var resp discoveryv3.DiscoveryResponse
		if proto.Unmarshal(b, &resp) != nil {
			return
		}
		items, err := sotwItems(&resp)
		if err != nil {
			return
		}
		for _, it := range items {
			if it.name == "" {
				t.Fatalf("item without a name from %v", &resp)
			}
		}
	})
}

// BenchmarkSotwItems measures decoding a response of 1000 listeners, the
// per-push cost before the handler sees anything.
func BenchmarkSotwItems(b *testing.B) {
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: lds}
	for i := range 1000 {
		l := testresource.MakeRouteHTTPListener(testresource.Ads, "0.0.0.0_"+strings.Repeat("8", i%5+1), uint32(i), "http.8080")
		l.Name += "_" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		resp.Resources = append(resp.Resources, mustAny(b, l))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sotwItems(resp); err != nil {
			b.Fatal(err)
		}
	}
}
