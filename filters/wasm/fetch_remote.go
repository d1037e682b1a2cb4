package wasm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	"github.com/waygate/waygate/filters/wasm/fetch"
)

// The VM environment variables istiod sets on a WasmPlugin's filter for
// the agent that fetches its module: the image pull secret (a Docker
// config JSON, which istiod reads from the Kubernetes secret), the
// image pull policy and the WasmPlugin's resource version.
// https://github.com/istio/istio/blob/master/pkg/model/wasm.go
const (
	envPullSecret      = "ISTIO_META_WASM_IMAGE_PULL_SECRET"
	envPullPolicy      = "ISTIO_META_WASM_IMAGE_PULL_POLICY"
	envResourceVersion = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"
	agentEnvPrefix     = "ISTIO_META_"
)

// directCluster is the cluster name istiod puts in a WasmPlugin's
// http_uri: no cluster of the proxy serves the module, the agent beside
// it fetches it.
const directCluster = "_"

// fetchers holds one module fetcher per cache directory and insecure
// host list, process-wide, so that every listener and push loading a
// module shares its cache and its fetch in progress.
var fetchers sync.Map // string -> *fetch.Fetcher

func fetcherFor(o Options) *fetch.Fetcher {
	o = o.withDefaults()
	key := o.CacheDir + "\x00" + o.InsecureRegistries
	if f, ok := fetchers.Load(key); ok {
		return f.(*fetch.Fetcher)
	}
	f := fetch.New(fetch.Options{
		Dir:           filepath.Join(o.CacheDir, "remote"),
		InsecureHosts: splitList(o.InsecureRegistries),
		MaxSize:       maxCodeSize,
		// istio-agent's settings of the module cache's expiry.
		ModuleExpiry:  envDuration("WASM_MODULE_EXPIRY"),
		PurgeInterval: envDuration("WASM_PURGE_INTERVAL"),
	})
	actual, _ := fetchers.LoadOrStore(key, f)
	return actual.(*fetch.Fetcher)
}

// envDuration is the duration the environment variable name holds, 0
// when unset or not a duration.
func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

// fetchedDirectly reports whether the gateway fetches a remote module
// itself rather than through a cluster: istiod's "_" cluster (or none),
// or an image reference, which no HTTP cluster serves.
func fetchedDirectly(u *corev3.HttpUri) bool {
	if c := u.GetCluster(); c == "" || c == directCluster {
		return true
	}
	uri := strings.ToLower(u.GetUri())
	return !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://")
}

// remoteDirect fetches a module as istio-agent does for Envoy, with the
// pull settings istiod put in the VM's environment.
func remoteDirect(ctx context.Context, rs *corev3.RemoteDataSource, pc *wasmv3.PluginConfig, o Options) ([]byte, error) {
	const field = "config.vm_config.code.remote"
	u := rs.GetHttpUri()
	if u.GetUri() == "" {
		return nil, fmt.Errorf("%s.http_uri.uri: is required", field)
	}
	env := pc.GetVmConfig().GetEnvironmentVariables().GetKeyValues()
	r := fetch.Request{
		URI:      u.GetUri(),
		SHA256:   rs.GetSha256(),
		Policy:   fetch.ParsePullPolicy(env[envPullPolicy]),
		Resource: pc.GetName(),
		Version:  env[envResourceVersion],
		Timeout:  u.GetTimeout().AsDuration(),
	}
	if s, ok := env[envPullSecret]; ok {
		r.PullSecret = []byte(s)
	}
	if rp := rs.GetRetryPolicy(); rp != nil {
		r.Attempts = 1 + int(rp.GetNumRetries().GetValue())
		r.Backoff = rp.GetRetryBackOff().GetBaseInterval().AsDuration()
		r.MaxBackoff = rp.GetRetryBackOff().GetMaxInterval().AsDuration()
	}
	b, err := fetcherFor(o).Get(ctx, r)
	var ce *fetch.ChecksumError
	var se *fetch.PullSecretError
	switch {
	case err == nil:
		return b, nil
	case errors.As(err, &ce):
		return nil, fmt.Errorf("%s.sha256: %w", field, err)
	case errors.As(err, &se):
		return nil, fmt.Errorf("config.vm_config.environment_variables.key_values[%s]: %w", envPullSecret, err)
	}
	return nil, fmt.Errorf("%s.http_uri: fetching %s: %w", field, u.GetUri(), err)
}

// pluginEnv is a plugin's environment from its VM config, without the
// variables istiod meant for the agent (the pull secret among them),
// which istio-agent strips before Envoy sees them.
func pluginEnv(kv map[string]string) map[string]string {
	var out map[string]string
	for k, v := range kv {
		if strings.HasPrefix(k, agentEnvPrefix) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(kv))
		}
		out[k] = v
	}
	return out
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
