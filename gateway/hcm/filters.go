package hcm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/waygate/waygate/filters"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// RouterTypeURL is the terminal filter every chain must end with.
const RouterTypeURL = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

// ErrMissingExtension marks a compile that needs an extension config
// (ECDS) not received yet. The listener warms until it arrives, as an
// Envoy listener waits for its filter configs. The error is a
// *MissingExtensionError.
var ErrMissingExtension = errors.New("extension config not received yet")

// DefaultInitialFetchTimeout is how long a listener waits for an
// extension config whose config_source sets no initial_fetch_timeout,
// as in Envoy.
const DefaultInitialFetchTimeout = 15 * time.Second

// MissingExtensionError names the extension config a listener waits for
// and how long it may wait (its config_source's initial_fetch_timeout;
// 0 is for ever). Once that time is up the caller calls
// ExpireExtension, and the filter serves without it, as Envoy's does:
// with its default_config, else failing what it sees.
type MissingExtensionError struct {
	Name    string
	Timeout time.Duration
}

func (e *MissingExtensionError) Error() string {
	return fmt.Sprintf("%v: waiting for extension config %q", ErrMissingExtension, e.Name)
}

func (e *MissingExtensionError) Is(target error) bool { return target == ErrMissingExtension }

// ExpireExtension records that the initial fetch of an extension config
// timed out: compiles that follow stop waiting for it.
func (c *Compiler) ExpireExtension(name string) {
	if c.factories == nil {
		c.factories = newFactoryCache()
	}
	c.factories.mu.Lock()
	c.factories.expired[name] = true
	c.factories.mu.Unlock()
}

// initialFetchTimeout is a config source's initial_fetch_timeout, with
// Envoy's default.
func initialFetchTimeout(cs *corev3.ConfigSource) time.Duration {
	if d := cs.GetInitialFetchTimeout(); d != nil {
		return max(d.AsDuration(), 0)
	}
	return DefaultInitialFetchTimeout
}

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
		last := i == len(hf)-1
		if cd := f.GetConfigDiscovery(); cd != nil {
			if last {
				return fmt.Errorf("%s: the last filter must be the router (%s), got a filter configured through discovery", path, RouterTypeURL)
			}
			fac, err := c.discovered(cfg, f, cd, base)
			if err != nil {
				return fmt.Errorf("%s.config_discovery: %w", path, err)
			}
			cfg.chain = append(cfg.chain, chainEntry{name: f.GetName(), factory: fac, disabled: f.GetDisabled()})
			continue
		}
		typeURL, msg, err := Unpack(f.GetTypedConfig())
		if err != nil {
			return fmt.Errorf("%s.typed_config: %v", path, err)
		}
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
		fac, err := c.factory(cfg, f.GetName(), typeURL, msg, build, base)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		cfg.chain = append(cfg.chain, chainEntry{name: f.GetName(), factory: fac, disabled: f.GetDisabled()})
	}
	return nil
}

// factory returns the cached factory for a filter config, building it
// on first use.
func (c *Compiler) factory(cfg *Config, name, typeURL string, msg proto.Message, build filters.Builder, base filters.Env) (filters.Factory, error) {
	return c.factories.get(cfg.StatPrefix+"\x00"+typeURL, msg, func() (filters.Factory, error) {
		env := base
		if env.Log != nil {
			env.Log = env.Log.With("filter", name)
		}
		return build(msg, env)
	})
}

// SetExtensions gives the compiles that follow the extension configs
// received over ECDS, by name. A filter whose config_discovery names
// one of them runs it; a change of one takes effect on the listeners in
// service at the next Sweep, without rebuilding them.
func (c *Compiler) SetExtensions(ext map[string]*corev3.TypedExtensionConfig) {
	if c.factories == nil {
		c.factories = newFactoryCache()
	}
	c.factories.mu.Lock()
	c.factories.ext = ext
	for name := range ext {
		// Received after all: a later removal is a removal.
		delete(c.factories.expired, name)
	}
	c.factories.mu.Unlock()
}

// ExtensionNames lists the extension configs (ECDS resources) an HTTP
// connection manager's filters name through config_discovery.
func ExtensionNames(m *hcmv3.HttpConnectionManager) []string {
	var out []string
	for _, f := range m.GetHttpFilters() {
		if f.GetConfigDiscovery() != nil {
			out = append(out, f.GetName())
		}
	}
	return out
}

// discovered resolves an HTTP filter configured through ECDS; see
// resolve for what runs.
func (c *Compiler) discovered(cfg *Config, f *hcmv3.HttpFilter, cd *corev3.ExtensionConfigSource, base filters.Env) (filters.Factory, error) {
	build := func(a *anypb.Any) (any, error) { return c.typedFactory(cfg, f.GetName(), a, base) }
	s, err := c.resolve(cfg.StatPrefix, f.GetName(), cd, build, missingConfig{}, httpFetchFallback, cfg.log)
	if err != nil {
		return nil, err
	}
	return httpSlot{s}, nil
}

// DiscoveredNetwork resolves a listener's network filter configured
// through ECDS, as HTTP filters are: build makes the network factory of
// a config whose type is one of type_urls. A filter without a config
// closes the connections it sees, as Envoy's does.
func (c *Compiler) DiscoveredNetwork(name string, cd *corev3.ExtensionConfigSource, build func(typeURL string, msg proto.Message) (filters.NetworkFactory, error)) (filters.NetworkFactory, error) {
	if c.factories == nil {
		c.factories = newFactoryCache()
	}
	typed := func(a *anypb.Any) (any, error) {
		typeURL, msg, err := Unpack(a)
		if err != nil {
			return nil, fmt.Errorf("typed_config: %v", err)
		}
		nf, err := build(typeURL, msg)
		if err != nil {
			return nil, fmt.Errorf("typed_config: %w", err)
		}
		return nf, nil
	}
	log := c.Env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := c.resolve("network", name, cd, typed, missingNetwork{}, networkFetchFallback, log)
	if err != nil {
		return nil, err
	}
	return networkSlot{s}, nil
}

// resolve finds what a filter configured through ECDS runs. The
// resource it subscribes to is named after the filter. In order: the
// received config; the default_config when the resource is not there
// and either apply_default_config_without_warming is set or the filter
// served before (the resource was removed, or its initial fetch timed
// out); missing, Envoy's stand-in for such a filter without a default.
// Otherwise the listener warms (ErrMissingExtension). A received
// config whose Wasm module cannot be fetched, for a filter not serving
// a previous version, gets fb's stand-in (see fetchfallback.go).
//
// The chain holds a slot shared by every compile of the same filter
// (scope and name), so an ECDS update switches the listeners in service
// to the new factory without rebuilding them or touching their
// connections; requests already running finish with the factory they
// started with.
func (c *Compiler) resolve(scope, name string, cd *corev3.ExtensionConfigSource, build func(*anypb.Any) (any, error), missing any, fb *fetchFallback, log *slog.Logger) (*slot, error) {
	if name == "" {
		return nil, errors.New("the filter needs a name: it is the extension config to subscribe to")
	}
	if err := checkConfigSource(cd.GetConfigSource()); err != nil {
		return nil, err
	}
	if len(cd.GetTypeUrls()) == 0 {
		return nil, errors.New("type_urls: at least one type URL is required")
	}
	build = allowedTypes(cd.GetTypeUrls(), build)
	fc := c.factories
	fc.mu.Lock()
	ext := fc.ext[name]
	key := scope + "\x00" + name
	s := fc.slots[key]
	// A filter whose initial fetch timed out serves as one whose config
	// was removed.
	served := s != nil && s.served || fc.expired[name]
	// A plugin serves when its slot was installed with something other
	// than a fetch stand-in; a stand-in resolved in this generation
	// already is reused rather than fetched again.
	plugin := false
	if s != nil && s.served {
		cur := s.cur.Load().v
		plugin = !isStandIn(cur) && cur != missing
	}
	var standIn any
	if s != nil && s.standIn != nil && s.standInGen == fc.gen {
		standIn = s.standIn
	}
	fc.mu.Unlock()

	var (
		v   any
		err error
	)
	switch {
	case ext != nil && standIn != nil:
		v = standIn
	case ext != nil:
		if v, err = build(ext.GetTypedConfig()); err != nil {
			sv, open, ok := fb.standIn(err, ext.GetTypedConfig(), cd.GetTypeUrls())
			if !ok || plugin {
				return nil, fmt.Errorf("extension config %q: %w", name, err)
			}
			kind := "deny-all"
			if open {
				kind = "allow-all"
			}
			log.Error("wasm module not fetched and no previous version serving: serving an "+kind+" stand-in until a push fetches it", "filter", name, "fail_open", open, "err", err)
			v, standIn = sv, sv
		}
	case cd.GetDefaultConfig() != nil && (served || cd.GetApplyDefaultConfigWithoutWarming()):
		if v, err = build(cd.GetDefaultConfig()); err != nil {
			return nil, fmt.Errorf("default_config: %w", err)
		}
	case served:
		log.Warn("extension config removed and no default_config: the filter fails what it sees", "filter", name)
		v = missing
	default:
		if d := cd.GetDefaultConfig(); d != nil {
			// Checked now so a bad default is reported with the
			// listener, not when it is first needed.
			if _, err := build(d); err != nil {
				return nil, fmt.Errorf("default_config: %w", err)
			}
		}
		return nil, &MissingExtensionError{Name: name, Timeout: initialFetchTimeout(cd.GetConfigSource())}
	}

	fc.mu.Lock()
	defer fc.mu.Unlock()
	if s = fc.slots[key]; s == nil {
		// A new slot serves only the configs of this generation, which
		// no request sees before they are installed: fill it now.
		s = &slot{}
		s.cur.Store(&boxed{v})
		fc.slots[key] = s
	} else {
		fc.pending[s] = v
	}
	s.gen = fc.gen
	if standIn != nil && (s.standIn == nil || s.standInGen != fc.gen) {
		s.standIn, s.standInGen = standIn, fc.gen
		if c.Stats != nil {
			c.Stats.Counter(FetchFallbackStat).Inc()
		}
	}
	return s, nil
}

// allowedTypes wraps build with the check Envoy makes of a discovered
// config: its type must be one of the filter's type_urls.
func allowedTypes(typeURLs []string, build func(*anypb.Any) (any, error)) func(*anypb.Any) (any, error) {
	return func(a *anypb.Any) (any, error) {
		typeURL, _, err := Unpack(a)
		if err != nil {
			return nil, fmt.Errorf("typed_config: %v", err)
		}
		if !slices.Contains(typeURLs, typeURL) {
			return nil, fmt.Errorf("typed_config: type %s is not one of the filter's type_urls %v", typeURL, typeURLs)
		}
		return build(a)
	}
}

// typedFactory builds an HTTP filter from an ECDS resource's or a
// default's typed_config, which must be one of the filter's type_urls.
func (c *Compiler) typedFactory(cfg *Config, name string, a *anypb.Any, base filters.Env) (filters.Factory, error) {
	typeURL, msg, err := Unpack(a)
	if err != nil {
		return nil, fmt.Errorf("typed_config: %v", err)
	}
	if typeURL == RouterTypeURL {
		return nil, fmt.Errorf("typed_config: the router cannot be configured through discovery")
	}
	if _, ok := filters.LookupNoop(typeURL); ok {
		return filters.FactoryFunc(func(*filters.Exchange) any { return nil }), nil
	}
	build, ok := filters.Lookup(typeURL)
	if !ok || msg == nil {
		return nil, fmt.Errorf("typed_config: %w %s", filters.ErrUnknown, typeURL)
	}
	fac, err := c.factory(cfg, name, typeURL, msg, build, base)
	if err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	return fac, nil
}

// checkConfigSource accepts the sources that mean "the stream the
// listeners came on": ads, and self. Waygate keeps one xDS stream.
func checkConfigSource(cs *corev3.ConfigSource) error {
	switch cs.GetConfigSourceSpecifier().(type) {
	case *corev3.ConfigSource_Ads, *corev3.ConfigSource_Self:
		return nil
	case nil:
		return errors.New("config_source: is required (ads)")
	}
	return errors.New("config_source: only ads (or self) is supported: extension configs come on the gateway's xDS stream")
}

// slot is the factory a discovered filter runs, swapped by ECDS updates.
type slot struct {
	cur atomic.Pointer[boxed]
	gen uint64
	// served is set once a generation using the slot was installed.
	served bool
	// standIn is what generation standInGen resolved the filter to
	// when its module could not be fetched.
	standIn    any
	standInGen uint64
}

// boxed holds a filters.Factory or a filters.NetworkFactory.
type boxed struct{ v any }

// httpSlot runs the slot's current HTTP filter factory.
type httpSlot struct{ s *slot }

func (h httpSlot) NewFilter(x *filters.Exchange) any {
	return h.s.cur.Load().v.(filters.Factory).NewFilter(x)
}

// networkSlot runs the slot's current network filter factory.
type networkSlot struct{ s *slot }

func (n networkSlot) NewNetworkFilter(c filters.NetworkConn) filters.NetworkFilter {
	return n.s.cur.Load().v.(filters.NetworkFactory).NewNetworkFilter(c)
}

// missingConfig is Envoy's HTTP filter for an ECDS filter with no
// config: it answers 500 with the NFCF (no filter config found) flag.
type missingConfig struct{}

func (missingConfig) NewFilter(*filters.Exchange) any { return missingConfig{} }

func (missingConfig) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	x.SendLocalReply(filters.LocalReply{Status: 500, Details: "filter_config_not_found", Flag: "NFCF"})
	return filters.Stop
}

// missingNetwork is the network counterpart: it closes the connection.
type missingNetwork struct{}

func (missingNetwork) NewNetworkFilter(filters.NetworkConn) filters.NetworkFilter {
	return missingNetwork{}
}

func (missingNetwork) OnNewConnection() filters.Status                           { return filters.Stop }
func (missingNetwork) OnData(filters.Side, *filters.Buffer, bool) filters.Status { return filters.Stop }
func (missingNetwork) OnClose(filters.Side, bool)                                {}
func (missingNetwork) OnDone()                                                   {}

// factoryCache shares factories between compiles by config content, so
// a push that leaves a filter's config unchanged keeps its factory and
// whatever state it holds.
type factoryCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
	gen     uint64

	// ext are the extension configs compiles resolve config_discovery
	// against; slots hold the discovered filters' factories by stat
	// prefix and filter name, and pending the factories the current
	// generation gives them, installed by Sweep.
	ext     map[string]*corev3.TypedExtensionConfig
	slots   map[string]*slot
	pending map[*slot]any
	// expired are the extension configs whose initial fetch timed out.
	expired map[string]bool
}

type cacheEntry struct {
	factory filters.Factory
	gen     uint64
}

func newFactoryCache() *factoryCache {
	return &factoryCache{entries: map[string]*cacheEntry{}, slots: map[string]*slot{}, pending: map[*slot]any{}, expired: map[string]bool{}}
}

func (fc *factoryCache) get(typeURL string, msg proto.Message, build func() (filters.Factory, error)) (filters.Factory, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, err
	}
	key := typeURL + "\x00" + string(b)
	fc.mu.Lock()
	e := fc.entries[key]
	if e != nil {
		e.gen = fc.gen
	}
	fc.mu.Unlock()
	if e != nil {
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
	// What a failed generation meant to install is forgotten.
	clear(c.factories.pending)
	for k, s := range c.factories.slots {
		if !s.served {
			delete(c.factories.slots, k)
		}
	}
	c.factories.mu.Unlock()
}

// Sweep installs the discovered filters' new factories, then closes the
// factories that no compile of the current generation used. Call it only
// after the generation's configs replaced the old ones.
func (c *Compiler) Sweep() {
	if c.factories == nil {
		return
	}
	fc := c.factories
	fc.mu.Lock()
	for s, v := range fc.pending {
		s.cur.Store(&boxed{v})
	}
	clear(fc.pending)
	for k, s := range fc.slots {
		if s.gen != fc.gen {
			delete(fc.slots, k)
			continue
		}
		s.served = true
	}
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
