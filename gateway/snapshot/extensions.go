package snapshot

import (
	"errors"
	"fmt"
	"sort"
	"strings"

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
		chains := l.GetFilterChains()
		if d := l.GetDefaultFilterChain(); d != nil {
			chains = append(chains[:len(chains):len(chains)], d)
		}
		for _, fc := range chains {
			for _, f := range fc.GetFilters() {
				if f.GetConfigDiscovery() != nil {
					seen[f.GetName()] = true
					continue
				}
				var m hcmv3.HttpConnectionManager
				if f.GetTypedConfig().MessageIs(&m) && f.GetTypedConfig().UnmarshalTo(&m) == nil {
					for _, n := range hcm.ExtensionNames(&m) {
						seen[n] = true
					}
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
