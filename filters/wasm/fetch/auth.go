package fetch

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// dockerConfig is the part of a Docker config JSON (a Kubernetes
// secret of type kubernetes.io/dockerconfigjson, which istiod sends as
// a WasmPlugin's imagePullSecret) holding registry credentials.
type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Auth          string `json:"auth"` // base64 of user:password
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// secretKeychain resolves a registry to the credentials a Docker
// config holds for it, anonymous if none.
type secretKeychain struct {
	auths map[string]authn.AuthConfig // by registry host[:port]
}

// parseDockerConfig reads a Docker config JSON. Its auths keys may be
// host[:port] or URLs (https://index.docker.io/v1/): each is reduced
// to its host.
func parseDockerConfig(b []byte) (*secretKeychain, error) {
	var c dockerConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("not a Docker config JSON: %w", err)
	}
	if c.Auths == nil {
		return nil, errors.New(`not a Docker config JSON: no "auths"`)
	}
	k := &secretKeychain{auths: map[string]authn.AuthConfig{}}
	for key, a := range c.Auths {
		cfg := authn.AuthConfig{
			Username:      a.Username,
			Password:      a.Password,
			IdentityToken: a.IdentityToken,
			RegistryToken: a.RegistryToken,
		}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("auths[%q].auth: not base64: %w", key, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("auths[%q].auth: not user:password", key)
			}
			cfg.Username, cfg.Password = user, pass
		}
		k.auths[registryHost(key)] = cfg
	}
	return k, nil
}

// registryHost reduces a Docker config auths key to host[:port].
func registryHost(key string) string {
	h := strings.ToLower(strings.TrimSpace(key))
	if _, rest, ok := strings.Cut(h, "://"); ok {
		h = rest
	}
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return name.DefaultRegistry
	}
	return h
}

// Resolve implements authn.Keychain.
func (k *secretKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	cfg, ok := k.auths[registryHost(r.RegistryStr())]
	if !ok || cfg == (authn.AuthConfig{}) {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(cfg), nil
}
