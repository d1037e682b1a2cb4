package snapshot

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/tlsconfig"
	"github.com/waygate/waygate/gateway/upstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Builder turns xDS updates into snapshots. It implements the xDS
// client's Handler: Apply is called with the complete set of one type.
type Builder struct {
	HCM       *hcm.Compiler
	Upstream  *upstream.Manager
	Listeners *listener.Manager
	Log       *slog.Logger
	// OnSwap, if set, is called after each new snapshot is installed.
	OnSwap func(*Snapshot)

	mu  sync.Mutex
	cur atomic.Pointer[Snapshot]
	// routeCache reuses compiled tables whose resource bytes did not change.
	routeCache map[string]compiledRoute
	// fetchTimers are the initial fetch timeouts running, by extension
	// config name (extensions.go).
	fetchTimers map[string]*time.Timer
	// warm holds the listeners until the first clusters have their
	// endpoints (clusterwarm.go).
	warm clusterWarmup
}

type compiledRoute struct {
	raw   []byte
	table *router.Table
}

// Current returns the snapshot in service (never nil).
func (b *Builder) Current() *Snapshot {
	if s := b.cur.Load(); s != nil {
		return s
	}
	return empty()
}

// View returns the current snapshot as the HTTP connection manager's view.
func (b *Builder) View() hcm.View { return b.Current() }

// Apply compiles the complete set of resources of typeURL into a new
// snapshot. An error leaves the current snapshot in service; its text is
// the NACK's error_detail.
func (b *Builder) Apply(typeURL string, resources map[string]*anypb.Any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := b.Current().clone()
	next.Resources[typeURL] = resources
	var err error
	switch typeURL {
	case resourcev3.ListenerType:
		err = b.applyListeners(next)
	case resourcev3.RouteType:
		err = b.applyRoutes(next)
	case resourcev3.ClusterType, resourcev3.EndpointType:
		err = b.applyClusters(next, typeURL == resourcev3.ClusterType)
	case resourcev3.SecretType:
		err = b.applySecrets(next)
	case resourcev3.ExtensionConfigType:
		err = b.applyExtensions(next)
	default:
		err = fmt.Errorf("resource type %s is not supported", typeURL)
	}
	if err != nil {
		return err
	}
	b.cur.Store(next)
	if typeURL == resourcev3.ListenerType || typeURL == resourcev3.SecretType || typeURL == resourcev3.ExtensionConfigType {
		b.HCM.Sweep()
	}
	if b.OnSwap != nil {
		b.OnSwap(next)
	}
	return nil
}

// Names returns the resource names to subscribe to for typeURL: nil
// (wildcard) for listeners and clusters; for routes, endpoints and
// secrets the names the accepted listeners and clusters refer to
// (clusters' TLS sockets name secrets too).
func (b *Builder) Names(typeURL string) []string {
	s := b.Current()
	switch typeURL {
	case resourcev3.RouteType:
		seen := map[string]bool{}
		for _, ls := range []map[string]*listener.Listener{s.Listeners, s.Pending} {
			for _, l := range ls {
				for _, n := range listener.RouteNames(l) {
					seen[n] = true
				}
			}
		}
		if len(s.Warming) > len(s.Pending) {
			ls, _ := decodeAll[*listenerv3.Listener](s.Resources[resourcev3.ListenerType])
			for name := range s.Warming {
				for _, n := range protoRouteNames(ls[name]) {
					seen[n] = true
				}
			}
		}
		return keys(seen)
	case resourcev3.EndpointType:
		clusters, err := decodeAll[*clusterv3.Cluster](s.Resources[resourcev3.ClusterType])
		if err != nil {
			return nil
		}
		return append([]string{}, upstream.EDSNames(clusters)...)
	case resourcev3.SecretType:
		seen := map[string]bool{}
		ls, _ := decodeAll[*listenerv3.Listener](s.Resources[resourcev3.ListenerType])
		for _, l := range ls {
			for _, n := range listener.SecretNames(l) {
				seen[n] = true
			}
		}
		cs, _ := decodeAll[*clusterv3.Cluster](s.Resources[resourcev3.ClusterType])
		for _, n := range upstream.SecretNames(cs) {
			seen[n] = true
		}
		return keys(seen)
	case resourcev3.ExtensionConfigType:
		ls, _ := decodeAll[*listenerv3.Listener](s.Resources[resourcev3.ListenerType])
		return extensionNames(ls)
	}
	return nil
}

func (b *Builder) applyListeners(next *Snapshot) error {
	ls, err := decodeAll[*listenerv3.Listener](next.Resources[resourcev3.ListenerType])
	if err != nil {
		return err
	}
	b.HCM.SetExtensions(next.Extensions)
	b.HCM.Begin()
	compiled := map[string]*listener.Listener{}
	warming := map[string]string{}
	pending := map[string]*listener.Listener{}
	var errs []string
	deps := listener.Deps{HCM: b.HCM, Secrets: next, Log: b.log()}
	for _, name := range sortedNames(ls) {
		l, err := listener.Compile(ls[name], deps)
		switch {
		case errors.Is(err, tlsconfig.ErrMissingSecret), errors.Is(err, hcm.ErrMissingExtension):
			warming[name] = err.Error()
			b.expireLater(err)
			// As in Envoy, the version in service keeps serving until
			// the update warms (its secrets or filter configs come), rather than the port going dark. It is
			// compiled again so this generation uses its filter
			// factories and Sweep does not close them under it.
			if prev := next.Listeners[name]; prev != nil {
				if again, err := listener.Compile(prev.Proto, deps); err == nil {
					prev = again
				}
				compiled[name] = prev
			}
		case err != nil:
			errs = append(errs, fmt.Sprintf("listener %q: %v", name, err))
		default:
			if reason := b.holdReason(l, next); reason != "" {
				warming[name] = reason
				pending[name] = l
				if prev := next.Listeners[name]; prev != nil {
					if again, err := listener.Compile(prev.Proto, deps); err == nil {
						prev = again
					}
					compiled[name] = prev
				}
				continue
			}
			compiled[name] = l
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	if b.Listeners != nil {
		if err := b.Listeners.Apply(compiled); err != nil {
			return err
		}
	}
	next.Listeners, next.Warming, next.Pending = compiled, warming, pending
	return nil
}

// missingRoutes names the first RDS route configuration l uses that next
// does not hold yet, or "".
func missingRoutes(l *listener.Listener, next *Snapshot) string {
	for _, n := range listener.RouteNames(l) {
		if next.Routes[n] == nil {
			return strconv.Quote(n)
		}
	}
	return ""
}

// holdReason says why a compiled listener waits (its routes, or the
// initial cluster warm-up), or "" if it may serve.
func (b *Builder) holdReason(l *listener.Listener, next *Snapshot) string {
	if missing := missingRoutes(l, next); missing != "" {
		return "waiting for route configuration " + missing
	}
	return b.warm.reason()
}

// promote starts the pending listeners that no longer wait, and updates
// the reason of those that still do.
func (b *Builder) promote(next *Snapshot) error {
	var ready []string
	warming := maps.Clone(next.Warming)
	for name, l := range next.Pending {
		if reason := b.holdReason(l, next); reason != "" {
			warming[name] = reason
			continue
		}
		ready = append(ready, name)
	}
	if len(ready) == 0 {
		next.Warming = warming
		return nil
	}
	active := maps.Clone(next.Listeners)
	pending := maps.Clone(next.Pending)
	for _, name := range ready {
		active[name] = pending[name]
		delete(pending, name)
		delete(warming, name)
	}
	if b.Listeners != nil {
		if err := b.Listeners.Apply(active); err != nil {
			return err
		}
	}
	next.Listeners, next.Pending, next.Warming = active, pending, warming
	return nil
}

func (b *Builder) applyRoutes(next *Snapshot) error {
	res := next.Resources[resourcev3.RouteType]
	if b.routeCache == nil {
		b.routeCache = map[string]compiledRoute{}
	}
	tables := make(map[string]*router.Table, len(res))
	cache := make(map[string]compiledRoute, len(res))
	var errs []string
	for _, name := range sortedNames(res) {
		raw := res[name].GetValue()
		if c, ok := b.routeCache[name]; ok && string(c.raw) == string(raw) {
			tables[name], cache[name] = c.table, c
			continue
		}
		var rc routev3.RouteConfiguration
		if err := res[name].UnmarshalTo(&rc); err != nil {
			errs = append(errs, fmt.Sprintf("route configuration %q: %v", name, err))
			continue
		}
		t, err := router.Compile(&rc)
		if err != nil {
			errs = append(errs, fmt.Sprintf("route configuration %q: %v", name, err))
			continue
		}
		tables[name] = t
		cache[name] = compiledRoute{raw: raw, table: t}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	b.routeCache = cache
	next.Routes = tables
	return b.promote(next)
}

// applyClusters builds the clusters with their endpoints. cds says the
// update is a set of clusters: the first one starts the initial warm-up.
func (b *Builder) applyClusters(next *Snapshot, cds bool) error {
	cs, err := decodeAll[*clusterv3.Cluster](next.Resources[resourcev3.ClusterType])
	if err != nil {
		return err
	}
	las, err := decodeAll[*endpointv3.ClusterLoadAssignment](next.Resources[resourcev3.EndpointType])
	if err != nil {
		return err
	}
	built, err := b.Upstream.BuildWithSecrets(cs, las, next)
	if err != nil {
		return err
	}
	next.Clusters = built
	before := b.warm.reason()
	if !b.warm.update(cds, cs, assignedNames(next), time.Now(), b.warmDeadline) {
		return nil
	}
	switch after := b.warm.reason(); {
	case after != "" && before == "":
		b.log().Info("listeners wait for the initial cluster warm-up", "reason", after)
	case after == "" && before != "":
		b.log().Info("initial cluster warm-up done; listeners start")
	}
	return b.promote(next)
}

// warmDeadline ends the initial warm-up's wait for the clusters whose
// initial_fetch_timeout passed without endpoints, and starts the
// listeners if nothing else holds them.
func (b *Builder) warmDeadline() {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.Current()
	before := b.warm.reason()
	if !b.warm.update(false, nil, assignedNames(cur), time.Now(), b.warmDeadline) {
		return
	}
	b.log().Warn("cluster endpoints not received within the initial fetch timeout; the initial warm-up goes on without them",
		"was", before, "now", b.warm.reason())
	next := cur.clone()
	if err := b.promote(next); err != nil {
		b.log().Error("listeners not started after the initial cluster warm-up", "err", err)
		return
	}
	b.cur.Store(next)
	if b.OnSwap != nil {
		b.OnSwap(next)
	}
}

// assignedNames are the ClusterLoadAssignments accepted, by name.
func assignedNames(s *Snapshot) map[string]bool {
	out := make(map[string]bool, len(s.Resources[resourcev3.EndpointType]))
	for name := range s.Resources[resourcev3.EndpointType] {
		out[name] = true
	}
	return out
}

func (b *Builder) applySecrets(next *Snapshot) error {
	ss, err := decodeAll[*tlsv3.Secret](next.Resources[resourcev3.SecretType])
	if err != nil {
		return err
	}
	next.Secrets = ss
	// Listeners and clusters that use secrets compile again: warming
	// listeners may now start, TLS clusters connect, and both pick up
	// rotated certificates.
	if err := b.applyListeners(next); err != nil {
		return err
	}
	if len(next.Resources[resourcev3.ClusterType]) == 0 {
		return nil
	}
	return b.applyClusters(next, false)
}

func (b *Builder) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// decodeAll unpacks resources of one type, keyed by name.
func decodeAll[T proto.Message](res map[string]*anypb.Any) (map[string]T, error) {
	out := make(map[string]T, len(res))
	for _, name := range sortedNames(res) {
		m, err := res[name].UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("%q: %v", name, err)
		}
		t, ok := m.(T)
		if !ok {
			return nil, fmt.Errorf("%q: unexpected type %s", name, res[name].GetTypeUrl())
		}
		out[name] = t
	}
	return out, nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]bool) []string {
	if len(m) == 0 {
		return []string{}
	}
	return sortedNames(m)
}
