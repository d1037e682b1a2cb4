package hcm

import (
	"fmt"
	"io"
	"sync"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/waygate/waygate/filters"
	"google.golang.org/protobuf/proto"
)

// RouterTypeURL is the terminal filter every chain must end with.
const RouterTypeURL = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

// compileFilters builds the chain's factories in order. An unknown filter
// marked is_optional is skipped with a warning; an unknown required one
// fails the listener, as Envoy does.
func (c *Compiler) compileFilters(cfg *Config, m *hcmv3.HttpConnectionManager, base filters.Env) error {
	hf := m.GetHttpFilters()
	if len(hf) == 0 {
		return fmt.Errorf("http_filters: the chain must end with %s", RouterTypeURL)
	}
	for i, f := range hf {
		path := fmt.Sprintf("http_filters[%d] %q", i, f.GetName())
		if f.GetConfigDiscovery() != nil {
			if f.GetIsOptional() {
				cfg.log.Warn("skipping optional filter configured through discovery", "filter", f.GetName())
				continue
			}
			return fmt.Errorf("%s.config_discovery: filter config discovery (ECDS) is not supported", path)
		}
		typeURL, msg, err := Unpack(f.GetTypedConfig())
		if err != nil {
			return fmt.Errorf("%s.typed_config: %v", path, err)
		}
		last := i == len(hf)-1
		if (typeURL == RouterTypeURL) != last {
			if last {
				return fmt.Errorf("%s: the last filter must be the router (%s), got %s", path, RouterTypeURL, typeURL)
			}
			return fmt.Errorf("%s: the router must be the last filter", path)
		}
		if why, ok := filters.LookupNoop(typeURL); ok {
			cfg.log.Info("accepting filter as a no-op", "filter", f.GetName(), "type", typeURL, "reason", why)
			continue
		}
		build, ok := filters.Lookup(typeURL)
		if !ok || msg == nil {
			if f.GetIsOptional() {
				cfg.log.Warn("skipping unknown optional filter", "filter", f.GetName(), "type", typeURL)
				continue
			}
			return fmt.Errorf("%s.typed_config: %w %s (an unknown filter can be skipped by marking it is_optional)", path, filters.ErrUnknown, typeURL)
		}
		fac, err := c.factories.get(cfg.StatPrefix+"\x00"+typeURL, msg, func() (filters.Factory, error) {
			env := base
			if env.Log != nil {
				env.Log = env.Log.With("filter", f.GetName())
			}
			return build(msg, env)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		cfg.chain = append(cfg.chain, chainEntry{name: f.GetName(), factory: fac, disabled: f.GetDisabled()})
	}
	return nil
}

// factoryCache shares factories between compiles by config content, so
// a push that leaves a filter's config unchanged keeps its factory and
// whatever state it holds.
type factoryCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
	gen     uint64
}

type cacheEntry struct {
	factory filters.Factory
	gen     uint64
}

func newFactoryCache() *factoryCache { return &factoryCache{entries: map[string]*cacheEntry{}} }

func (fc *factoryCache) get(typeURL string, msg proto.Message, build func() (filters.Factory, error)) (filters.Factory, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, err
	}
	key := typeURL + "\x00" + string(b)
	fc.mu.Lock()
	e := fc.entries[key]
	fc.mu.Unlock()
	if e != nil {
		fc.mu.Lock()
		e.gen = fc.gen
		fc.mu.Unlock()
		return e.factory, nil
	}
	f, err := build()
	if err != nil {
		return nil, err
	}
	fc.mu.Lock()
	fc.entries[key] = &cacheEntry{factory: f, gen: fc.gen}
	fc.mu.Unlock()
	return f, nil
}

// Begin starts a compile generation: factories not used by the
// compiles of this generation are released by Sweep.
func (c *Compiler) Begin() {
	if c.factories == nil {
		c.factories = newFactoryCache()
	}
	c.factories.mu.Lock()
	c.factories.gen++
	c.factories.mu.Unlock()
}

// Sweep closes the factories that no compile of the current generation
// used. Call it only after the generation's configs replaced the old ones.
func (c *Compiler) Sweep() {
	if c.factories == nil {
		return
	}
	fc := c.factories
	fc.mu.Lock()
	var dead []filters.Factory
	for k, e := range fc.entries {
		if e.gen != fc.gen {
			dead = append(dead, e.factory)
			delete(fc.entries, k)
		}
	}
	fc.mu.Unlock()
	for _, f := range dead {
		if cl, ok := f.(io.Closer); ok {
			cl.Close()
		}
	}
}
