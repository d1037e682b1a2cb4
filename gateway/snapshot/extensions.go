package snapshot

import (
	"errors"
	"fmt"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm"
)

// applyExtensions accepts a set of ECDS extension configs. Each must
// carry a typed_config of a filter this gateway has; then every listener
// compiles again, so a config that fails to build (a Wasm module that
// does not load) rejects the whole update and the previous configs keep
// serving. Listeners waiting for a config start once it is here; those
// in service switch to a changed config at once, without a rebuild.
func (b *Builder) applyExtensions(next *Snapshot) error {
	res := next.Resources[resourcev3.ExtensionConfigType]
	exts, err := decodeAll[*corev3.TypedExtensionConfig](res)
	if err != nil {
		return fmt.Errorf("extension config %v", err)
	}
	var errs []string
	for _, name := range sortedNames(exts) {
		if err := checkExtension(exts[name]); err != nil {
			errs = append(errs, fmt.Sprintf("extension config %q: %v", name, err))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	next.Extensions = exts
	if err := b.applyListeners(next); err != nil {
		return fmt.Errorf("extension configs rejected: %w", err)
	}
	return nil
}

// expireLater starts the initial fetch timeout of the extension config a
// listener waits for, if err says so and none runs for it: when it fires
// before the config arrives, the listeners compile without it (its
// default_config, else failing what it sees), as Envoy's do. The caller
// holds b.mu.
func (b *Builder) expireLater(err error) {
	var me *hcm.MissingExtensionError
	if !errors.As(err, &me) || me.Timeout <= 0 || b.fetchTimers[me.Name] != nil {
		return
	}
	if b.fetchTimers == nil {
		b.fetchTimers = map[string]*time.Timer{}
	}
	name := me.Name
	b.fetchTimers[name] = time.AfterFunc(me.Timeout, func() { b.expire(name) })
}

// expire ends the wait for an extension config that did not come in
// time and starts the listeners that waited for it.
func (b *Builder) expire(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.fetchTimers, name)
	cur := b.Current()
	if cur.Extensions[name] != nil {
		return
	}
	b.log().Warn("extension config not received within its initial fetch timeout; listeners start without it", "name", name)
	b.HCM.ExpireExtension(name)
	next := cur.clone()
	if err := b.applyListeners(next); err != nil {
		b.log().Error("listeners not started after an extension config timed out", "name", name, "err", err)
		return
	}
	b.cur.Store(next)
	b.HCM.Sweep()
	if b.OnSwap != nil {
		b.OnSwap(next)
	}
}

// checkExtension rejects what no listener could use: a config without a
// typed_config, or of a type the gateway has no HTTP or network filter
// for.
func checkExtension(e *corev3.TypedExtensionConfig) error {
	typeURL, msg, err := hcm.Unpack(e.GetTypedConfig())
	if err != nil {
		return fmt.Errorf("typed_config: %v", err)
	}
	if _, ok := filters.LookupNoop(typeURL); ok {
		return nil
	}
	_, http := filters.Lookup(typeURL)
	_, network := filters.LookupNetwork(typeURL)
	if !(http || network) || msg == nil {
		return fmt.Errorf("typed_config: %w %s", filters.ErrUnknown, typeURL)
	}
	return nil
}

// extensionNames lists the extension configs the listeners' filters
// name through config_discovery: the ECDS subscription. It reads the
// protos, since a listener cannot compile before its configs arrive.
func extensionNames(ls map[string]*listenerv3.Listener) []string {
	seen := map[string]bool{}
	for _, l := range ls {
		forEachFilter(l, func(f *listenerv3.Filter, m *hcmv3.HttpConnectionManager) {
			if f.GetConfigDiscovery() != nil {
				seen[f.GetName()] = true
			}
			for _, n := range hcm.ExtensionNames(m) {
				seen[n] = true
			}
		})
	}
	return sortedNames(seen)
}

// protoRouteNames lists the RDS route configurations a listener proto's
// connection managers name, for a listener that cannot compile yet
// (waiting for secrets or extension configs): as in Envoy, its routes
// are fetched meanwhile.
func protoRouteNames(l *listenerv3.Listener) []string {
	var out []string
	forEachFilter(l, func(_ *listenerv3.Filter, m *hcmv3.HttpConnectionManager) {
		if n := m.GetRds().GetRouteConfigName(); n != "" {
			out = append(out, n)
		}
	})
	return out
}

// forEachFilter calls fn with each network filter of the listener's
// chains, and its HTTP connection manager config (nil for other
// filters; a nil message's getters return zero values).
func forEachFilter(l *listenerv3.Listener, fn func(*listenerv3.Filter, *hcmv3.HttpConnectionManager)) {
	chains := l.GetFilterChains()
	if d := l.GetDefaultFilterChain(); d != nil {
		chains = append(chains[:len(chains):len(chains)], d)
	}
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			var m *hcmv3.HttpConnectionManager
			if tc := f.GetTypedConfig(); tc != nil {
				h := &hcmv3.HttpConnectionManager{}
				if tc.MessageIs(h) && tc.UnmarshalTo(h) == nil {
					m = h
				}
			}
			fn(f, m)
		}
	}
}
