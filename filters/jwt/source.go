package jwt

import (
	"context"
	"fmt"
	"os"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// keySource gives a provider its current JWKS. keys may block on a
// remote fetch, honoring ctx; kid lets a remote source refetch when an
// issuer signs with a key it has not seen yet.
type keySource interface {
	keys(ctx context.Context, kid string) (*keySet, status)
}

// localSource is an inline or file JWKS, parsed once at build time. A
// set that does not parse leaves the provider without keys, so its
// tokens fail with "Jwks doesn't have any valid public key", as Envoy
// does, instead of refusing the listener: istiod inlines whatever its
// own fetch produced and one bad issuer must not take down the gateway.
type localSource struct {
	ks *keySet
}

func (l *localSource) keys(context.Context, string) (*keySet, status) {
	if l.ks == nil {
		return nil, statusNoValidKeys
	}
	return l.ks, statusOK
}

// readDataSource reads an envoy.config.core.v3.DataSource.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/base.proto#config-core-v3-datasource
func readDataSource(ds *corev3.DataSource) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_Filename:
		return os.ReadFile(s.Filename)
	case *corev3.DataSource_EnvironmentVariable:
		v, ok := os.LookupEnv(s.EnvironmentVariable)
		if !ok {
			return nil, fmt.Errorf("environment variable %q is not set", s.EnvironmentVariable)
		}
		return []byte(v), nil
	}
	return nil, fmt.Errorf("one of inline_string, inline_bytes, filename or environment_variable is required")
}
