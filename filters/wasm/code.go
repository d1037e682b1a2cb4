package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	"github.com/waygate/waygate/filters"
)

// maxCodeSize bounds a plugin binary fetched.
const maxCodeSize = 256 << 20

// loadPluginCode reads the plugin binary named by vm_config.code: a
// local file, inline bytes or string; a remote http_uri fetched through
// its cluster and checked against its sha256, as Envoy does; or, as
// istiod sends a WasmPlugin's url for its agent to fetch (cluster "_"),
// an https:// or http:// URL or an OCI image fetched by the gateway
// itself, with the pull settings of the VM's environment.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/base.proto#envoy-v3-api-msg-config-core-v3-asyncdatasource
func loadPluginCode(ctx context.Context, pc *wasmv3.PluginConfig, up filters.Upstream, o Options) ([]byte, error) {
	switch s := pc.GetVmConfig().GetCode().GetSpecifier().(type) {
	case *corev3.AsyncDataSource_Local:
		return localCode(s.Local)
	case *corev3.AsyncDataSource_Remote:
		if fetchedDirectly(s.Remote.GetHttpUri()) {
			return remoteDirect(ctx, s.Remote, pc, o)
		}
		return remoteCode(ctx, s.Remote, up)
	}
	return nil, fmt.Errorf("config.vm_config.code: one of local or remote is required")
}

// loadCode is loadPluginCode for code alone, with the default options:
// it knows no image pull secret, pull policy or resource version, which
// travel in the VM's environment, so builders call loadPluginCode.
func loadCode(ctx context.Context, src *corev3.AsyncDataSource, up filters.Upstream) ([]byte, error) {
	pc := &wasmv3.PluginConfig{Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{Code: src}}}
	return loadPluginCode(ctx, pc, up, DefaultOptions())
}

func localCode(ds *corev3.DataSource) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_Filename:
		name := strings.TrimPrefix(s.Filename, "file://")
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("config.vm_config.code.local.filename: %w", err)
		}
		return b, nil
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case *corev3.DataSource_EnvironmentVariable:
		v, ok := os.LookupEnv(s.EnvironmentVariable)
		if !ok {
			return nil, fmt.Errorf("config.vm_config.code.local.environment_variable: %s is not set", s.EnvironmentVariable)
		}
		return []byte(v), nil
	}
	return nil, fmt.Errorf("config.vm_config.code.local: one of filename, inline_bytes or inline_string is required")
}

func remoteCode(ctx context.Context, rs *corev3.RemoteDataSource, up filters.Upstream) ([]byte, error) {
	const field = "config.vm_config.code.remote"
	u := rs.GetHttpUri()
	if u.GetUri() == "" {
		return nil, fmt.Errorf("%s.http_uri.uri: is required", field)
	}
	want := strings.ToLower(rs.GetSha256())
	if want == "" {
		return nil, fmt.Errorf("%s.sha256: is required", field)
	}
	if up == nil {
		return nil, fmt.Errorf("%s: no upstream to fetch %s through", field, u.GetUri())
	}
	timeout := 10 * time.Second
	if d := u.GetTimeout(); d != nil && d.AsDuration() > 0 {
		timeout = d.AsDuration()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tries := 1 + int(rs.GetRetryPolicy().GetNumRetries().GetValue())
	var err error
	for i := 0; i < tries; i++ {
		var b []byte
		if b, err = fetchThrough(ctx, up, u.GetCluster(), u.GetUri()); err == nil {
			sum := sha256.Sum256(b)
			if got := hex.EncodeToString(sum[:]); got != want {
				return nil, fmt.Errorf("%s.sha256: fetched %s has sha256 %s, want %s", field, u.GetUri(), got, want)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s.http_uri: fetching %s: %w", field, u.GetUri(), err)
}

func fetchThrough(ctx context.Context, up filters.Upstream, cluster, uri string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	resp, err := up.RoundTrip(ctx, cluster, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCodeSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCodeSize {
		return nil, fmt.Errorf("larger than %d bytes", maxCodeSize)
	}
	return b, nil
}
