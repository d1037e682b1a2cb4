package client

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

const (
	lds = resourcev3.ListenerType
	rds = resourcev3.RouteType
	cds = resourcev3.ClusterType
	eds = resourcev3.EndpointType
	sds = resourcev3.SecretType
)

var v1 = config{
	version:   "1",
	listeners: map[string][2]string{"l1": {"r1", "s1"}},
	routes:    map[string]string{"r1": "c1"},
	clusters:  map[string]uint32{"c1": 9001},
	secrets:   []string{"s1"},
}

var v1Sets = map[string][]string{lds: {"l1"}, rds: {"r1"}, cds: {"c1"}, eds: {"c1"}, sds: {"s1"}}

// eventually polls cond, for conditions no notification covers.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestDeliversEveryTypeAndFollowsNames(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := startServer(t, "127.0.0.1:0")
			srv.set(t, v1.snapshot(t))
			h := newTestHandler()
			c := startClient(t, srv.addr, m.delta, h)
			h.waitSets(t, v1Sets)
			if m.delta {
				srv.waitDelta(t, "RDS subscribe r1", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == rds && slices.Equal(r.GetResourceNamesSubscribe(), []string{"r1"})
				})
				srv.waitDelta(t, "SDS subscribe s1", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == sds && slices.Equal(r.GetResourceNamesSubscribe(), []string{"s1"})
				})
			} else {
				srv.waitSotW(t, "RDS request for r1", func(r *discoveryv3.DiscoveryRequest) bool {
					return r.GetTypeUrl() == rds && slices.Equal(r.GetResourceNames(), []string{"r1"})
				})
				srv.waitSotW(t, "EDS request for c1", func(r *discoveryv3.DiscoveryRequest) bool {
					return r.GetTypeUrl() == eds && slices.Equal(r.GetResourceNames(), []string{"c1"})
				})
			}

			// l1 is replaced by l2, which routes to r2 and c2; r1 and c1 go away.
			v2 := config{
				version:   "2",
				listeners: map[string][2]string{"l2": {"r2", "s1"}},
				routes:    map[string]string{"r2": "c2"},
				clusters:  map[string]uint32{"c2": 9002},
				secrets:   []string{"s1"},
			}
			srv.set(t, v2.snapshot(t))
			h.waitSets(t, map[string][]string{lds: {"l2"}, rds: {"r2"}, cds: {"c2"}, eds: {"c2"}, sds: {"s1"}})

			if m.delta {
				srv.waitDelta(t, "RDS unsubscribe r1", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == rds && slices.Equal(r.GetResourceNamesSubscribe(), []string{"r2"}) &&
						slices.Equal(r.GetResourceNamesUnsubscribe(), []string{"r1"})
				})
				srv.waitDelta(t, "LDS ACK", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == lds && r.GetResponseNonce() != "" && r.GetErrorDetail() == nil
				})
			} else {
				srv.waitSotW(t, "RDS request for r2 only", func(r *discoveryv3.DiscoveryRequest) bool {
					return r.GetTypeUrl() == rds && slices.Equal(r.GetResourceNames(), []string{"r2"})
				})
				srv.waitSotW(t, "LDS ACK of version 2", func(r *discoveryv3.DiscoveryRequest) bool {
					return r.GetTypeUrl() == lds && r.GetVersionInfo() == "2" && r.GetResponseNonce() != "" && r.GetErrorDetail() == nil
				})
			}

			// A Delta server sends nothing for a type whose resources did not
			// change, so the unchanged secret stays at the version it came with.
			sdsVersion := "2"
			if m.delta {
				sdsVersion = "1"
			}
			eventually(t, "status at version 2", func() bool {
				st := c.Status()
				return st.Types[lds].Version == "2" && st.Types[rds].Version == "2" && st.Types[cds].Version == "2" &&
					st.Types[eds].Version == "2" && st.Types[sds].Version == sdsVersion
			})
			st := c.Status()
			if !st.Connected || st.Address != srv.addr || st.Delta != m.delta || st.NodeID != testNodeID {
				t.Errorf("status = %+v", st)
			}
			for typ, want := range map[string][]string{lds: nil, cds: nil, rds: {"r2"}, eds: {"c2"}, sds: {"s1"}} {
				ts := st.Types[typ]
				if ts.Nonce == "" || ts.Time.IsZero() || ts.Resources != 1 || ts.LastNACK != nil {
					t.Errorf("%s status = %+v", typ, ts)
				}
				if !slices.Equal(ts.Names, want) {
					t.Errorf("%s names = %q, want %q", typ, ts.Names, want)
				}
			}
		})
	}
}

func TestNACKKeepsPreviousAndRecovers(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := startServer(t, "127.0.0.1:0")
			srv.set(t, v1.snapshot(t))
			h := newTestHandler()
			h.reject = func(typeURL string, res map[string]proto.Message) error {
				if _, bad := res["bad"]; bad && typeURL == lds {
					return errors.New(`listener "bad": unknown required filter`)
				}
				return nil
			}
			c := startClient(t, srv.addr, m.delta, h)
			h.waitSets(t, v1Sets)

			v2 := v1
			v2.version = "2"
			v2.listeners = map[string][2]string{"l1": {"r1", "s1"}, "bad": {"r1", ""}}
			srv.set(t, v2.snapshot(t))

			if m.delta {
				r := srv.waitDelta(t, "LDS NACK", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == lds && r.GetErrorDetail() != nil
				})
				if r.GetResponseNonce() == "" {
					t.Errorf("NACK without response_nonce: %v", r)
				}
				checkDetail(t, r.GetErrorDetail().GetCode(), r.GetErrorDetail().GetMessage())
			} else {
				r := srv.waitSotW(t, "LDS NACK", func(r *discoveryv3.DiscoveryRequest) bool {
					return r.GetTypeUrl() == lds && r.GetErrorDetail() != nil
				})
				if r.GetVersionInfo() != "1" || r.GetResponseNonce() == "" {
					t.Errorf("NACK carries version %q nonce %q, want the previous version 1 and a nonce", r.GetVersionInfo(), r.GetResponseNonce())
				}
				checkDetail(t, r.GetErrorDetail().GetCode(), r.GetErrorDetail().GetMessage())
			}
			if got := h.set(lds); !slices.Equal(got, []string{"l1"}) {
				t.Errorf("after NACK the handler holds %q, want the previous [l1]", got)
			}
			eventually(t, "NACK in status", func() bool { return c.Status().Types[lds].LastNACK != nil })
			st := c.Status().Types[lds]
			if st.Version != "1" || st.LastNACK.Version != "2" || !strings.Contains(st.LastNACK.Error, "unknown required filter") || st.LastNACK.Time.IsZero() {
				t.Errorf("LDS status after NACK = %+v, NACK %+v", st, *st.LastNACK)
			}

			v3 := v1
			v3.version = "3"
			v3.listeners = map[string][2]string{"l1": {"r1", "s1"}, "l3": {"r1", ""}}
			srv.set(t, v3.snapshot(t))
			h.waitSets(t, map[string][]string{lds: {"l1", "l3"}})
			if m.delta {
				srv.waitDelta(t, "ACK after NACK", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == lds && r.GetResponseNonce() != "" && r.GetErrorDetail() == nil
				})
			} else {
				srv.waitSotW(t, "ACK of version 3", func(r *discoveryv3.DiscoveryRequest) bool {
					return r.GetTypeUrl() == lds && r.GetVersionInfo() == "3" && r.GetErrorDetail() == nil
				})
			}
			eventually(t, "LDS accepted at version 3", func() bool { return c.Status().Types[lds].Version == "3" })
			if n := c.Status().Types[lds].LastNACK; n == nil || n.Version != "2" {
				t.Errorf("last NACK = %+v, want the one of version 2 kept", n)
			}
		})
	}
}

func checkDetail(t *testing.T, code int32, msg string) {
	t.Helper()
	if codes.Code(code) != codes.InvalidArgument || !strings.Contains(msg, `listener "bad": unknown required filter`) {
		t.Errorf("error_detail = %v %q, want INVALID_ARGUMENT with the handler's message", codes.Code(code), msg)
	}
}

func TestReconnectKeepsConfigAndResubscribes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv1 := startServer(t, "127.0.0.1:0")
			srv1.set(t, v1.snapshot(t))
			h := newTestHandler()
			c := startClient(t, srv1.addr, m.delta, h)
			h.waitSets(t, v1Sets)

			srv1.stop()
			eventually(t, "disconnected status", func() bool { return !c.Status().Connected })
			if st := c.Status(); st.LastError == "" || st.Types[lds].Version != "1" {
				t.Errorf("status while disconnected = %+v", st)
			}
			h.waitSets(t, v1Sets) // still serving the last good config

			srv2 := startServer(t, srv1.addr)
			v2 := v1
			v2.version = "2"
			v2.listeners = map[string][2]string{"l1": {"r1", "s1"}, "l2": {"r1", ""}}
			srv2.set(t, v2.snapshot(t))
			h.waitSets(t, map[string][]string{lds: {"l1", "l2"}, rds: {"r1"}, cds: {"c1"}, eds: {"c1"}, sds: {"s1"}})
			eventually(t, "connected status", func() bool { return c.Status().Connected })

			if m.delta {
				r := srv2.waitDelta(t, "initial LDS request", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == lds && r.GetResponseNonce() == ""
				})
				if _, ok := r.GetInitialResourceVersions()["l1"]; !ok {
					t.Errorf("initial LDS request lacks initial_resource_versions for l1: %v", r)
				}
				srv2.waitDelta(t, "RDS resubscription", func(r *discoveryv3.DeltaDiscoveryRequest) bool {
					return r.GetTypeUrl() == rds && r.GetResponseNonce() == "" &&
						slices.Equal(r.GetResourceNamesSubscribe(), []string{"r1"}) && r.GetInitialResourceVersions()["r1"] != ""
				})
			} else {
				srv2.waitSotW(t, "RDS resubscription", func(r *discoveryv3.DiscoveryRequest) bool {
					return r.GetTypeUrl() == rds && r.GetResponseNonce() == "" && r.GetVersionInfo() == "1" &&
						slices.Equal(r.GetResourceNames(), []string{"r1"})
				})
			}
			srv2.mu.Lock()
			first := srv2.firstNode()
			srv2.mu.Unlock()
			if first != testNodeID {
				t.Errorf("first request of the new stream has node %q, want %q", first, testNodeID)
			}
			if e := h.emptyApplies(); len(e) > 0 {
				t.Errorf("empty sets applied across the reconnect: %v", e)
			}
		})
	}
}

// firstNode returns the node id of the first request received.
func (s *xdsServer) firstNode() string {
	if len(s.sotw) > 0 {
		return s.sotw[0].GetNode().GetId()
	}
	if len(s.delta) > 0 {
		return s.delta[0].GetNode().GetId()
	}
	return ""
}
