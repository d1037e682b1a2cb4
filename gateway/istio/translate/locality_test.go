package translate

import (
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/api/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

func groups(localities ...string) []*endpointv3.LocalityLbEndpoints {
	var out []*endpointv3.LocalityLbEndpoints
	for _, l := range localities {
		out = append(out, &endpointv3.LocalityLbEndpoints{
			Locality:            parseLocality(l),
			LbEndpoints:         []*endpointv3.LbEndpoint{{}},
			LoadBalancingWeight: wrapperspb.UInt32(1),
		})
	}
	return out
}

func priorities(eps []*endpointv3.LocalityLbEndpoints) []uint32 {
	var out []uint32
	for _, g := range eps {
		out = append(out, g.Priority)
	}
	return out
}

func TestLocalityFailover(t *testing.T) {
	proxy := parseLocality("us-east/a/1")
	eps := groups("us-east/a/1", "us-east/a/2", "us-east/b", "eu-west/c", "us-west/d")
	applyLocalityFailover(proxy, eps, nil)
	if got, want := priorities(eps), []uint32{0, 1, 2, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("default failover: priorities %v, want %v", got, want)
	}
	// us-east fails over to us-west before other regions; the levels
	// are renumbered without gaps.
	eps = groups("us-east/a/1", "eu-west/c", "us-west/d")
	applyLocalityFailover(proxy, eps, []*v1alpha3.LocalityLoadBalancerSetting_Failover{{From: "us-east", To: "us-west"}})
	if got, want := priorities(eps), []uint32{0, 2, 1}; !slices.Equal(got, want) {
		t.Errorf("region failover: priorities %v, want %v", got, want)
	}
}

func TestLocalityWeights(t *testing.T) {
	proxy := parseLocality("us-east/a")
	eps := groups("us-east/a", "us-east/b", "us-west/c", "eu/x")
	ok := applyLocalityWeights(proxy, eps, []*v1alpha3.LocalityLoadBalancerSetting_Distribute{
		{From: "eu/*", To: map[string]uint32{"eu/*": 100}},
		{From: "us-east/a/*", To: map[string]uint32{"us-east/a/*": 80, "us-west/*": 20}},
	})
	if !ok {
		t.Fatal("no rule applied")
	}
	want := []struct {
		weight uint32
		kept   bool
	}{{80, true}, {1, false}, {20, true}, {1, false}}
	for i, g := range eps {
		if g.GetLoadBalancingWeight().GetValue() != want[i].weight || (len(g.LbEndpoints) > 0) != want[i].kept {
			t.Errorf("group %d (%v): weight %d, %d endpoints; want %d, kept %v", i, g.Locality, g.GetLoadBalancingWeight().GetValue(), len(g.LbEndpoints), want[i].weight, want[i].kept)
		}
	}
	if applyLocalityWeights(parseLocality("ap/z"), groups("ap/z"), []*v1alpha3.LocalityLoadBalancerSetting_Distribute{{From: "us-east/*", To: map[string]uint32{"us-east/*": 100}}}) {
		t.Error("a rule from another region applied")
	}
}

func TestLocalityMatches(t *testing.T) {
	l := &corev3.Locality{Region: "us-east", Zone: "a", SubZone: "1"}
	for rule, want := range map[string]bool{
		"us-east": true, "us-east/*": true, "us-east/a": true, "us-east/a/1": true, "*": true,
		"us-east/b": false, "us-west/*": false, "us-east/a/2": false, "*/a/*": true,
	} {
		if got := localityMatches(l, rule); got != want {
			t.Errorf("localityMatches(%q) = %v, want %v", rule, got, want)
		}
	}
}

// Through Translate: a gateway with a locality gets failover priorities
// on a service with outlier detection, and none without a locality.
func TestTranslateLocality(t *testing.T) {
	cfg, findings := istio.ParseDocuments("t.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, locality: us-east/a}
  - {address: 10.0.0.2, locality: us-east/b}
  - {address: 10.0.0.3, locality: eu-west/c}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s}
`))
	for _, f := range findings {
		if f.Severity == istio.Error {
			t.Fatal(f)
		}
	}
	prios := func(p Proxy) []uint32 {
		res, _ := Translate(cfg, p)
		for _, e := range res.Endpoints {
			if e.GetClusterName() == "outbound|80||api.default.svc.cluster.local" {
				return priorities(e.GetEndpoints())
			}
		}
		t.Fatal("no endpoints of the api cluster")
		return nil
	}
	if got, want := prios(Proxy{Locality: parseLocality("us-east/a")}), []uint32{2, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("priorities %v, want %v (eu-west, us-east/a, us-east/b)", got, want)
	}
	if got, want := prios(Proxy{}), []uint32{0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("without a locality: priorities %v, want %v", got, want)
	}
}

// Failover by labels: the gateway's network, then a fixed label value,
// then its zone; each locality's endpoints are split by how many of the
// leading labels they share, and locality failover orders endpoints
// within a level when failover rules are given too.
func TestTranslateFailoverPriority(t *testing.T) {
	const entry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, locality: us-east/a, network: net-a, labels: {version: v2}}
  - {address: 10.0.0.2, locality: us-east/b, network: net-a, labels: {version: v2}}
  - {address: 10.0.0.3, locality: us-east/a, network: net-a, labels: {version: v1}}
  - {address: 10.0.0.4, locality: us-east/a, network: net-b, labels: {version: v2}}
  - {address: 10.0.0.5, locality: eu-west/c, network: net-a, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api
  trafficPolicy:
`
	const outlier = `    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s}
`
	type level struct {
		priority uint32
		addrs    string
	}
	levels := func(t *testing.T, doc string, p Proxy) []level {
		t.Helper()
		res, _ := Translate(parseValid(t, "t.yaml", []byte(doc)), p)
		for _, e := range res.Endpoints {
			if e.GetClusterName() != "outbound|80||api.default.svc.cluster.local" {
				continue
			}
			var out []level
			var total uint32
			for _, g := range e.GetEndpoints() {
				var addrs []string
				var sum uint32
				for _, lb := range g.GetLbEndpoints() {
					addrs = append(addrs, lb.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
					sum += lb.GetLoadBalancingWeight().GetValue()
				}
				if g.GetLoadBalancingWeight().GetValue() != sum {
					t.Errorf("group %v: weight %d, its endpoints' sum %d", addrs, g.GetLoadBalancingWeight().GetValue(), sum)
				}
				total += uint32(len(addrs))
				out = append(out, level{g.GetPriority(), strings.Join(addrs, ",")})
			}
			if total != 5 {
				t.Errorf("%d endpoints, want all 5", total)
			}
			return out
		}
		t.Fatal("no endpoints of the api cluster")
		return nil
	}
	gw := Proxy{Network: "net-a", Locality: parseLocality("us-east/a/z1"), Labels: map[string]string{"istio": "ingressgateway"}}

	byLabels := entry + outlier + `    loadBalancer:
      localityLbSetting:
        failoverPriority: [topology.istio.io/network, version=v2, topology.kubernetes.io/zone]
`
	// Sorted by locality: eu-west/c shares the network and version but
	// not the zone; us-east/a splits three ways.
	want := []level{{1, "10.0.0.5"}, {0, "10.0.0.1"}, {2, "10.0.0.3"}, {3, "10.0.0.4"}, {1, "10.0.0.2"}}
	if got := levels(t, byLabels, gw); !slices.Equal(got, want) {
		t.Errorf("failoverPriority: %v, want %v", got, want)
	}

	// A gateway on the other network prefers the endpoint on it; the
	// endpoints on net-a come after, still ordered by version and zone,
	// as in istiod since 1.31.
	other := gw
	other.Network = "net-b"
	want = []level{{2, "10.0.0.5"}, {0, "10.0.0.4"}, {1, "10.0.0.1"}, {3, "10.0.0.3"}, {2, "10.0.0.2"}}
	if got := levels(t, byLabels, other); !slices.Equal(got, want) {
		t.Errorf("from net-b: %v, want %v", got, want)
	}

	// failoverPriority with failover: the network first, then locality
	// (us-east/a, then eu-west, the failover target) within it.
	withFailover := entry + outlier + `    loadBalancer:
      localityLbSetting:
        failoverPriority: [topology.istio.io/network]
        failover: [{from: us-east, to: eu-west}]
`
	want = []level{{2, "10.0.0.5"}, {0, "10.0.0.1,10.0.0.3"}, {3, "10.0.0.4"}, {1, "10.0.0.2"}}
	if got := levels(t, withFailover, gw); !slices.Equal(got, want) {
		t.Errorf("failoverPriority and failover: %v, want %v", got, want)
	}

	// Without outlier detection there is no failover, as in istiod.
	for _, l := range levels(t, entry+`    loadBalancer:
      localityLbSetting:
        failoverPriority: [topology.istio.io/network]
`, gw) {
		if l.priority != 0 {
			t.Errorf("without outlier detection: %v has priority %d", l.addrs, l.priority)
		}
	}
}
