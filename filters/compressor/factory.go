package compressor

import (
	"fmt"
	"sync"

	compressorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

const (
	// TypeURL is the filter's config type, for the listener's
	// http_filters entry.
	TypeURL = "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor"
	// PerRouteTypeURL is the per-route config type, for
	// typed_per_filter_config.
	PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute"
	// FilterName is the key the filter reads its per-route config under.
	// A builder does not learn the name its filter has in the chain, so
	// the filter uses Envoy's conventional name.
	FilterName = "envoy.filters.http.compressor"
)

func init() {
	filters.Register(TypeURL, build)
	filters.RegisterRouteConfig(PerRouteTypeURL, buildRoute)
}

func build(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*compressorv3.Compressor)
	if !ok {
		return nil, fmt.Errorf("compressor: config is %T, want Compressor", cfg)
	}
	return New(pb, env)
}

func buildRoute(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*compressorv3.CompressorPerRoute)
	if !ok {
		return nil, fmt.Errorf("compressor: per-route config is %T, want CompressorPerRoute", cfg)
	}
	return compileRoute(pb)
}

// Factory creates the per-stream compressor filter from a compiled
// Compressor config.
type Factory struct {
	cfg   *config
	env   filters.Env
	stats *counters

	// libStats holds the counters of libraries that routes put in place
	// of the filter's own, by stats prefix, made on first use.
	mu       sync.Mutex
	libStats map[string]*counters
}

// New compiles pb. Its counters are named as Envoy names them under the
// connection manager's scope (http.<stat_prefix>.), the scope env.Stats
// is expected to have:
// compressor.<library name>.<library stat prefix>.response.<counter>, or
// without "response." for a config that has no
// response_direction_config (Envoy's legacy tree).
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/compressor_filter#statistics
func New(pb *compressorv3.Compressor, env filters.Env) (*Factory, error) {
	cfg, err := compile(pb)
	if err != nil {
		return nil, err
	}
	f := &Factory{cfg: cfg, env: env}
	f.stats = f.countersFor(cfg.lib)
	return f, nil
}

// statsPrefix is the stats prefix of lib for this filter.
func (f *Factory) statsPrefix(lib *library) string {
	p := "compressor." + lib.name + "." + lib.statPrefix + "."
	if !f.cfg.resp.legacyStats {
		p += "response."
	}
	return p
}

func (f *Factory) countersFor(lib *library) *counters {
	p := f.statsPrefix(lib)
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.libStats[p]; ok {
		return c
	}
	c := newCounters(f.env.Stats, p)
	if f.libStats == nil {
		f.libStats = map[string]*counters{}
	}
	f.libStats[p] = c
	return c
}

// counters are the response stats of one library.
type counters struct {
	compressed, notCompressed                   filters.Counter
	totalUncompressed, totalCompressed          filters.Counter
	tooSmall, notCompressedEtag                 filters.Counter
	noAccept, identity, used, wildcard, invalid filters.Counter
}

func newCounters(s filters.Stats, prefix string) *counters {
	mk := func(name string) filters.Counter {
		if s == nil {
			return nopCounter{}
		}
		return s.Counter(prefix + name)
	}
	return &counters{
		compressed:        mk("compressed"),
		notCompressed:     mk("not_compressed"),
		totalUncompressed: mk("total_uncompressed_bytes"),
		totalCompressed:   mk("total_compressed_bytes"),
		tooSmall:          mk("content_length_too_small"),
		notCompressedEtag: mk("not_compressed_etag"),
		noAccept:          mk("no_accept_header"),
		identity:          mk("header_identity"),
		used:              mk("header_compressor_used"),
		wildcard:          mk("header_wildcard"),
		invalid:           mk("header_not_valid"),
	}
}

func (c *counters) accept(r acceptResult) filters.Counter {
	switch r {
	case noAcceptHeader:
		return c.noAccept
	case headerCompressorUsed:
		return c.used
	case headerWildcard:
		return c.wildcard
	case headerIdentity:
		return c.identity
	}
	return c.invalid
}

type nopCounter struct{}

func (nopCounter) Inc()         {}
func (nopCounter) Add(n uint64) {}

// NewFilter returns nil, taking no part in the stream, when the route
// disables compression or response compression is off and the route
// does not turn it on.
func (f *Factory) NewFilter(x *filters.Exchange) any {
	fl := &filter{f: f}
	if !fl.setup(x) {
		return nil
	}
	fl.captureAccept(x)
	return fl
}
