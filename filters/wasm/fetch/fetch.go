// Package fetch brings remote Wasm modules to the gateway, as
// istio-agent does for Envoy: https:// and http:// URLs fetched
// directly, oci:// (or bare) image references pulled from a registry,
// each checked against its sha256, kept in an on-disk cache keyed by
// the module's name and digest, and fetched once however many
// listeners load it at the same time.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Fetcher. The zero value of a field takes its
// default.
type Options struct {
	// Dir holds the fetched modules, so a restart does not fetch them
	// again. Default: a directory under os.TempDir().
	Dir string
	// InsecureHosts are the hosts (host or host:port; "*" for any)
	// whose TLS certificates are not verified and whose registries may
	// be reached over plain HTTP: istio-agent's WASM_INSECURE_REGISTRIES.
	InsecureHosts []string
	// Transport is the base of every connection made, for its TLS
	// settings (trusted roots) and proxies. Default: a clone of
	// http.DefaultTransport.
	Transport *http.Transport
	// MaxSize bounds a module, and the compressed image layer holding
	// it. Default 256 MiB.
	MaxSize int64
	// Log receives a line per fetch. Default: discarded.
	Log *slog.Logger
	// ModuleExpiry is how long a cached module may go unused before it
	// is removed, and PurgeInterval how often the cache is checked
	// (purge.go). Defaults: 24 h and 1 h; a negative PurgeInterval
	// never purges.
	ModuleExpiry, PurgeInterval time.Duration
}

// Defaults of a Request's fields left zero, as istio-agent's.
const (
	DefaultTimeout    = 30 * time.Second
	DefaultAttempts   = 5
	DefaultBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
	defaultMaxSize    = 256 << 20
)

// PullPolicy says when a module already in the cache is fetched again.
type PullPolicy string

// The pull policies of Istio's WasmPlugin. The empty policy is
// IfNotPresent, except for an image tagged latest (or not tagged),
// which is Always.
const (
	PullDefault      PullPolicy = ""
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullAlways       PullPolicy = "Always"
)

// Request names one module to fetch.
type Request struct {
	// URI is an https:// or http:// URL, an oci:// image reference, or
	// a bare image reference (registry/repository[:tag][@digest]).
	URI string
	// SHA256 is the expected digest, in hex, possibly empty: the
	// module's for a URL, the image manifest's for an image.
	SHA256 string
	// Policy says whether a cached module is fetched again.
	Policy PullPolicy
	// PullSecret is a Docker config JSON ({"auths": {...}}) holding the
	// registry credentials; nil pulls with the credentials of the
	// gateway's own Docker config, if any, else anonymously.
	PullSecret []byte
	// Resource and Version identify the config that asks for the module
	// (a WasmPlugin and its resource version): with PullAlways, a
	// module is fetched again when a resource's version changes, not
	// each time a listener is built from the same version.
	Resource, Version string
	// Timeout bounds the whole fetch, retries included.
	Timeout time.Duration
	// Attempts is the number of tries of a URL fetch failing with a
	// network error or a 5xx status, and of registry requests.
	Attempts int
	// Backoff is the pause after the first failed attempt, doubled
	// after each next one up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
}

// ChecksumError is a module or image whose digest is not the one asked
// for.
type ChecksumError struct {
	URI, Got, Want string
}

func (e *ChecksumError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("%q is not a sha256 digest (64 hex digits)", e.Want)
	}
	return fmt.Sprintf("%s has sha256 %s, want %s", e.URI, e.Got, e.Want)
}

// PullSecretError is an image pull secret that cannot be used.
type PullSecretError struct{ Err error }

func (e *PullSecretError) Error() string { return "image pull secret: " + e.Err.Error() }
func (e *PullSecretError) Unwrap() error { return e.Err }

// Fetcher fetches modules and caches them. It is safe for concurrent
// use; one Fetcher per cache directory should serve the process, so
// that concurrent loads of a module share one fetch.
type Fetcher struct {
	opts     Options
	cache    *cache
	secure   *http.Transport
	insecure *http.Transport
	log      *slog.Logger

	mu      sync.Mutex
	flights map[string]*flight
	// lastPurge is when the cache was last purged, in Unix nanoseconds.
	lastPurge atomic.Int64
}

// New returns a Fetcher with its options.
func New(o Options) *Fetcher {
	if o.Dir == "" {
		o.Dir = filepath.Join(os.TempDir(), "waygate-wasm-modules")
	}
	if o.MaxSize <= 0 {
		o.MaxSize = defaultMaxSize
	}
	if o.ModuleExpiry <= 0 {
		o.ModuleExpiry = DefaultModuleExpiry
	}
	if o.PurgeInterval == 0 {
		o.PurgeInterval = DefaultPurgeInterval
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secure, insecure := transports(o.Transport)
	return &Fetcher{
		opts:     o,
		cache:    newCache(o.Dir),
		secure:   secure,
		insecure: insecure,
		log:      log,
		flights:  map[string]*flight{},
	}
}

// flight is one fetch in progress, whose result every concurrent
// caller asking for the same module receives.
type flight struct {
	done chan struct{}
	b    []byte
	err  error
}

// Get returns the module r names: from the cache when it holds it and
// the pull policy allows, else fetched, checked and cached. It returns
// within r.Timeout.
func (f *Fetcher) Get(ctx context.Context, r Request) ([]byte, error) {
	r = r.withDefaults()
	src, err := ParseSource(r.URI)
	if err != nil {
		return nil, err
	}
	want, err := expectedDigest(src, r.SHA256)
	if err != nil {
		return nil, err
	}
	if r.PullSecret != nil && len(strings.TrimSpace(string(r.PullSecret))) == 0 {
		return nil, &PullSecretError{errors.New("is empty (the control plane could not read the secret)")}
	}
	f.maybePurge(time.Now())
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()

	// Callers asking for the same module at once share the fetch of
	// the first, whatever their policy: its result is as fresh as any.
	key := src.URI + "\x00" + want
	f.mu.Lock()
	fl, ok := f.flights[key]
	if !ok {
		fl = &flight{done: make(chan struct{})}
		f.flights[key] = fl
		go func() {
			// The fetch runs on its own bounded context, so a caller
			// giving up does not fail the others waiting for it.
			fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), r.Timeout)
			defer fcancel()
			fl.b, fl.err = f.get(fctx, src, r, want)
			f.mu.Lock()
			delete(f.flights, key)
			f.mu.Unlock()
			close(fl.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-fl.done:
		return fl.b, notFetched(src.URI, fl.err)
	case <-ctx.Done():
		return nil, notFetched(src.URI, fmt.Errorf("fetching %s: %w", src.URI, context.Cause(ctx)))
	}
}

func (f *Fetcher) get(ctx context.Context, src Source, r Request, want string) ([]byte, error) {
	sum := want
	if sum == "" {
		sum = f.cache.tagged(src.URI, r.Resource, r.Version, !src.alwaysPull(r.Policy))
	}
	if sum != "" {
		if b, ok := f.cache.module(src.Name, sum); ok {
			f.log.Debug("wasm module from cache", "uri", src.URI, "sha256", sum)
			return b, nil
		}
	}
	start := time.Now()
	var (
		b    []byte
		got  string
		pull func() ([]byte, error)
		err  error
	)
	switch src.Kind {
	case KindHTTP:
		if b, err = f.fetchURL(ctx, src, r); err != nil {
			return nil, err
		}
		got = sha256Hex(b)
	case KindOCI:
		if pull, got, err = f.resolveImage(ctx, src, r, want); err != nil {
			return nil, err
		}
	}
	if want != "" && got != want {
		return nil, &ChecksumError{URI: src.URI, Got: got, Want: want}
	}
	if want == "" {
		// A tag or URL fetched again may name a module already cached.
		if cached, ok := f.cache.module(src.Name, got); ok {
			f.cache.tag(src, got, r.Resource, r.Version)
			return cached, nil
		}
	}
	if pull != nil {
		if b, err = pull(); err != nil {
			return nil, fmt.Errorf("pulling %s: %w", src.URI, err)
		}
	}
	if !isWasm(b) {
		return nil, fmt.Errorf("%s is not a Wasm module (no \\0asm header)", src.URI)
	}
	if err := f.cache.put(src.Name, got, b); err != nil {
		f.log.Warn("wasm module not cached on disk", "uri", src.URI, "error", err)
	}
	f.cache.tag(src, got, r.Resource, r.Version)
	f.log.Info("wasm module fetched", "uri", src.URI, "sha256", got, "bytes", len(b), "took", time.Since(start))
	return b, nil
}

func (r Request) withDefaults() Request {
	if r.Timeout <= 0 {
		r.Timeout = DefaultTimeout
	}
	if r.Attempts <= 0 {
		r.Attempts = DefaultAttempts
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultBackoff
	}
	if r.MaxBackoff < r.Backoff {
		r.MaxBackoff = max(DefaultMaxBackoff, r.Backoff)
	}
	return r
}

// insecureHost reports whether host (host:port) is listed as insecure.
func (f *Fetcher) insecureHost(host string) bool {
	h := host
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
		h = host[:i]
	}
	return slices.ContainsFunc(f.opts.InsecureHosts, func(s string) bool {
		return s == "*" || strings.EqualFold(s, host) || strings.EqualFold(s, h)
	})
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
