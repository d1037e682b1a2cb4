package gateway

import (
	"sort"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/waygate/waygate/gateway/xds/client"
)

// source answers the admin server from the current snapshot and the xDS
// client's status, in Envoy's admin shapes so istioctl and other tools
// read them unchanged.
type source struct{ g *Gateway }

func (s source) Ready() bool {
	select {
	case <-s.g.ready:
		return !s.g.draining.Load()
	default:
		return false
	}
}

func (s source) ServerInfo() *adminv3.ServerInfo {
	state := adminv3.ServerInfo_LIVE
	if !s.Ready() {
		state = adminv3.ServerInfo_PRE_INITIALIZING
		if s.g.draining.Load() {
			state = adminv3.ServerInfo_DRAINING
		}
	}
	return &adminv3.ServerInfo{
		Version:            "waygate",
		State:              state,
		UptimeCurrentEpoch: durationpb.New(time.Since(s.g.started)),
		UptimeAllEpochs:    durationpb.New(time.Since(s.g.started)),
		Node:               s.g.opts.Node,
	}
}

func (s source) ConfigDump(includeEDS bool) *adminv3.ConfigDump {
	snap := s.g.Builder.Current()
	st := s.g.xds.Status()
	var configs []*anypb.Any
	add := func(m proto.Message) {
		if a, err := anypb.New(m); err == nil {
			configs = append(configs, a)
		}
	}
	add(&adminv3.BootstrapConfigDump{Bootstrap: &bootstrapv3.Bootstrap{Node: s.g.opts.Node}})

	ld := &adminv3.ListenersConfigDump{VersionInfo: version(st, resourcev3.ListenerType)}
	for _, name := range names(snap.Resources[resourcev3.ListenerType]) {
		state := &adminv3.ListenersConfigDump_DynamicListenerState{
			VersionInfo: version(st, resourcev3.ListenerType),
			Listener:    snap.Resources[resourcev3.ListenerType][name],
			LastUpdated: updated(st, resourcev3.ListenerType),
		}
		dl := &adminv3.ListenersConfigDump_DynamicListener{Name: name}
		if _, warming := snap.Warming[name]; warming {
			dl.WarmingState = state
		} else {
			dl.ActiveState = state
		}
		dl.ErrorState = failure(st, resourcev3.ListenerType)
		ld.DynamicListeners = append(ld.DynamicListeners, dl)
	}
	add(ld)

	if ext := snap.Resources[resourcev3.ExtensionConfigType]; len(ext) > 0 {
		ed := &adminv3.EcdsConfigDump{}
		for _, name := range names(ext) {
			ed.EcdsFilters = append(ed.EcdsFilters, &adminv3.EcdsConfigDump_EcdsFilterConfig{
				VersionInfo: version(st, resourcev3.ExtensionConfigType),
				EcdsFilter:  ext[name],
				LastUpdated: updated(st, resourcev3.ExtensionConfigType),
				ErrorState:  failure(st, resourcev3.ExtensionConfigType),
			})
		}
		add(ed)
	}

	cd := &adminv3.ClustersConfigDump{VersionInfo: version(st, resourcev3.ClusterType)}
	for _, name := range names(snap.Resources[resourcev3.ClusterType]) {
		cd.DynamicActiveClusters = append(cd.DynamicActiveClusters, &adminv3.ClustersConfigDump_DynamicCluster{
			VersionInfo: version(st, resourcev3.ClusterType),
			Cluster:     snap.Resources[resourcev3.ClusterType][name],
			LastUpdated: updated(st, resourcev3.ClusterType),
			ErrorState:  failure(st, resourcev3.ClusterType),
		})
	}
	add(cd)

	rd := &adminv3.RoutesConfigDump{}
	for _, name := range names(snap.Resources[resourcev3.RouteType]) {
		rd.DynamicRouteConfigs = append(rd.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{
			VersionInfo: version(st, resourcev3.RouteType),
			RouteConfig: snap.Resources[resourcev3.RouteType][name],
			LastUpdated: updated(st, resourcev3.RouteType),
			ErrorState:  failure(st, resourcev3.RouteType),
		})
	}
	add(rd)

	sd := &adminv3.SecretsConfigDump{}
	for _, name := range names(snap.Resources[resourcev3.SecretType]) {
		sec, ok := snap.Secrets[name]
		if !ok {
			continue
		}
		sd.DynamicActiveSecrets = append(sd.DynamicActiveSecrets, &adminv3.SecretsConfigDump_DynamicSecret{
			Name:        name,
			VersionInfo: version(st, resourcev3.SecretType),
			LastUpdated: updated(st, resourcev3.SecretType),
			Secret:      redacted(sec),
		})
	}
	add(sd)

	if includeEDS {
		ed := &adminv3.EndpointsConfigDump{}
		for _, name := range names(snap.Resources[resourcev3.EndpointType]) {
			ed.DynamicEndpointConfigs = append(ed.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{
				VersionInfo:    version(st, resourcev3.EndpointType),
				EndpointConfig: snap.Resources[resourcev3.EndpointType][name],
				LastUpdated:    updated(st, resourcev3.EndpointType),
			})
		}
		add(ed)
	}
	return &adminv3.ConfigDump{Configs: configs}
}

func (s source) Clusters() *adminv3.Clusters {
	snap := s.g.Builder.Current()
	out := &adminv3.Clusters{}
	for _, name := range names(snap.Clusters) {
		c := snap.Clusters[name]
		cs := &adminv3.ClusterStatus{Name: name, AddedViaApi: true}
		for _, ep := range c.Endpoints() {
			hs := &adminv3.HostStatus{
				Address: socketAddress(ep.Address),
				Weight:  ep.Weight,
				HealthStatus: &adminv3.HostHealthStatus{
					EdsHealthStatus:         healthOf(ep.Healthy),
					FailedActiveHealthCheck: ep.FailedActiveHealthCheck(),
					FailedOutlierCheck:      ep.FailedOutlierCheck(),
				},
				Stats: []*adminv3.SimpleMetric{
					{Type: adminv3.SimpleMetric_GAUGE, Name: "rq_active", Value: uint64(max(ep.ActiveRequests(), 0))},
				},
				Locality: ep.Locality,
				Priority: ep.Priority,
			}
			cs.HostStatuses = append(cs.HostStatuses, hs)
		}
		out.ClusterStatuses = append(out.ClusterStatuses, cs)
	}
	return out
}

func (s source) Listeners() *adminv3.Listeners {
	snap := s.g.Builder.Current()
	out := &adminv3.Listeners{}
	for _, name := range names(snap.Listeners) {
		addr := s.g.Listeners.Addr(name)
		out.ListenerStatuses = append(out.ListenerStatuses, &adminv3.ListenerStatus{Name: name, LocalAddress: socketAddress(addr)})
	}
	return out
}

// redacted hides private keys, as Envoy's config dump does.
func redacted(sec *tlsv3.Secret) *anypb.Any {
	c := proto.Clone(sec).(*tlsv3.Secret)
	if tc := c.GetTlsCertificate(); tc != nil && tc.GetPrivateKey() != nil {
		tc.PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "[redacted]"}}
	}
	a, _ := anypb.New(c)
	return a
}

func healthOf(ok bool) corev3.HealthStatus {
	if ok {
		return corev3.HealthStatus_HEALTHY
	}
	return corev3.HealthStatus_UNHEALTHY
}

func socketAddress(hostport string) *corev3.Address {
	host, port := splitHostPort(hostport)
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func version(st client.Status, typeURL string) string { return st.Types[typeURL].Version }

func updated(st client.Status, typeURL string) *timestamppb.Timestamp {
	t := st.Types[typeURL].Time
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func failure(st client.Status, typeURL string) *adminv3.UpdateFailureState {
	n := st.Types[typeURL].LastNACK
	// Envoy clears the error state once a later update succeeds.
	if n == nil || n.Time.Before(st.Types[typeURL].Time) {
		return nil
	}
	return &adminv3.UpdateFailureState{Details: n.Error, VersionInfo: n.Version, LastUpdateAttempt: timestamppb.New(n.Time)}
}

func names[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
