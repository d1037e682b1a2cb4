package wasm

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// Options tune the host. The zero value of a field takes its default.
type Options struct {
	// CacheDir holds wazero's compiled code, so a restart or a second
	// gateway on the machine skips compilation. Default: a directory
	// under os.TempDir().
	CacheDir string
	// CallTimeout bounds each call into a plugin (a stream callback, a
	// tick): past it the instance is killed and replaced. Default 100ms.
	// A negative value sets no bound, for plugins the operator trusts
	// not to loop forever: the plugin is then compiled as it is, without
	// the loop-head checks that make a call stoppable (see interrupter),
	// which cost about a third more per iteration of a tight loop.
	// The spec asks hosts to bound CPU time per invocation:
	// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#memory-and-cpu-limits
	CallTimeout time.Duration
	// StartTimeout bounds an instance's start (_initialize,
	// proxy_on_vm_start, proxy_on_configure), which runs a language
	// runtime's initialization. Default 10s.
	StartTimeout time.Duration
	// MemoryLimitPages caps an instance's linear memory, in 64 KiB pages.
	// Default 2048 (128 MiB).
	MemoryLimitPages uint32
	// PoolSize is the number of instances per plugin. Default GOMAXPROCS.
	PoolSize int
	// CloseDelay is how long a replaced plugin keeps its instances for
	// requests still arriving on connections accepted with the old
	// config, which close after their current request. Default 5s; a
	// negative value stops them as soon as no stream uses them.
	CloseDelay time.Duration
	// InsecureRegistries lists, comma-separated, the hosts (host or
	// host:port; "*" for any) remote modules are fetched from without
	// verifying their TLS certificates, and whose registries may be
	// reached over plain HTTP, as istio-agent's WASM_INSECURE_REGISTRIES.
	// A string, so that Options stay comparable.
	InsecureRegistries string
}

// Environment variables read by DefaultOptions, for the gateway binary
// whose filters are built from xDS alone.
const (
	EnvCacheDir         = "WAYGATE_WASM_CACHE_DIR"
	EnvCallTimeout      = "WAYGATE_WASM_CALL_TIMEOUT"
	EnvMemoryLimitPages = "WAYGATE_WASM_MEMORY_LIMIT_PAGES"
	EnvPoolSize         = "WAYGATE_WASM_POOL_SIZE"
	EnvCloseDelay       = "WAYGATE_WASM_CLOSE_DELAY"
	// EnvInsecureRegistries is read, else istio-agent's
	// WASM_INSECURE_REGISTRIES.
	EnvInsecureRegistries = "WAYGATE_WASM_INSECURE_REGISTRIES"
)

// DefaultOptions are the options the registered builder uses: the
// defaults, overridden by the WAYGATE_WASM_* environment variables.
func DefaultOptions() Options {
	var o Options
	o.CacheDir = os.Getenv(EnvCacheDir)
	if d, err := time.ParseDuration(os.Getenv(EnvCallTimeout)); err == nil {
		o.CallTimeout = d
	}
	if n, err := strconv.ParseUint(os.Getenv(EnvMemoryLimitPages), 10, 32); err == nil {
		o.MemoryLimitPages = uint32(n)
	}
	if n, err := strconv.Atoi(os.Getenv(EnvPoolSize)); err == nil {
		o.PoolSize = n
	}
	if d, err := time.ParseDuration(os.Getenv(EnvCloseDelay)); err == nil {
		o.CloseDelay = d
	}
	o.InsecureRegistries = os.Getenv(EnvInsecureRegistries)
	if o.InsecureRegistries == "" {
		o.InsecureRegistries = os.Getenv("WASM_INSECURE_REGISTRIES")
	}
	return o
}

func (o Options) withDefaults() Options {
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(os.TempDir(), "waygate-wasm-cache")
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = 100 * time.Millisecond
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.MemoryLimitPages == 0 {
		o.MemoryLimitPages = 2048
	}
	if o.PoolSize <= 0 {
		o.PoolSize = runtime.GOMAXPROCS(0)
	}
	if o.CloseDelay == 0 {
		o.CloseDelay = 5 * time.Second
	} else if o.CloseDelay < 0 {
		o.CloseDelay = 0
	}
	return o
}
