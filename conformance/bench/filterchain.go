package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// FilterSetup is the full filter chain scenario: a RequestAuthentication
// verifying ES256 tokens against an inline JWKS, an AuthorizationPolicy
// of ten rules whose last one requires that principal and a GET on /
// (the nine before it never match), a RateLimitPolicy with a
// local limit far above the load (so it counts but never rejects), and a
// fault abort at 0% on the route, and a WasmPlugin: a Proxy-Wasm module
// built with the Go SDK that adds a request header (the "addheader" mode
// of filters/wasm/testdata/examples). Token is a valid token for every
// request to carry; Wasm the module's path.
type FilterSetup struct {
	JWKS  string
	Token string
	Wasm  string
}

const benchIssuer = "bench@waygate.dev"

// NewFilterSetup makes a fresh P-256 key, its JWKS and a token valid for
// a day, and builds the Wasm plugin into dir.
func NewFilterSetup(dir string) (*FilterSetup, error) {
	wasm, err := buildHeaderPlugin(dir)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	pad := func(n *big.Int) string { return b64(n.FillBytes(make([]byte, 32))) }
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "bench", "use": "sig",
		"x": pad(key.PublicKey.X), "y": pad(key.PublicKey.Y),
	}}})
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": "bench"})
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"iss": benchIssuer, "sub": "loadgen", "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix()})
	signing := b64(header) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		return nil, err
	}
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	return &FilterSetup{JWKS: string(jwks), Token: signing + "." + b64(sig), Wasm: wasm}, nil
}

func (f *FilterSetup) yaml() string {
	return fmt.Sprintf(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: bench-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - issuer: %s
    jwks: '%s'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bench-authz, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: ALLOW
  rules:
%s  - from:
    - source: {requestPrincipals: ["%s/*"]}
    to:
    - operation: {methods: [GET], paths: ["/*"]}
---
apiVersion: waygate.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: bench-local, namespace: istio-system}
spec:
  rules:
  - name: generous
    by: clientIP
    local: {requests: 100000000, per: second}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: bench-header, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  url: file://%s
  pluginConfig: {mode: addheader}
`, benchIssuer, f.JWKS, otherRules(), benchIssuer, f.Wasm)
}

// otherRules are nine ALLOW rules the load never matches, ahead of the
// one it does, so that a request is checked against ten.
func otherRules() string {
	var b strings.Builder
	for i := range 9 {
		fmt.Fprintf(&b, `  - from:
    - source: {requestPrincipals: ["other-%d@waygate.dev/*"]}
    to:
    - operation: {methods: [GET, POST], paths: ["/r%d/*"]}
`, i, i)
	}
	return b.String()
}

// buildHeaderPlugin compiles the Go SDK plugin of the Wasm host's tests
// (its own module, so the gateway's go.mod does not carry the SDK) as a
// WASI reactor, the way the host loads it.
func buildHeaderPlugin(dir string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	src := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "filters", "wasm", "testdata", "examples")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "addheader.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the Wasm header plugin in %s: %v\n%s", src, err, b)
	}
	return out, nil
}
