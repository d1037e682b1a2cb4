package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rs256 signs JWTs with a fresh RSA key, published as a one-key JWKS.
type rs256 struct {
	key *rsa.PrivateKey
	kid string
}

func newRS256(t *testing.T) *rs256 {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &rs256{key: k, kid: "test-key"}
}

func (s *rs256) jwks() string {
	b64 := base64.RawURLEncoding.EncodeToString
	e := big.NewInt(int64(s.key.E)).Bytes()
	return fmt.Sprintf(`{"keys":[{"kty":"RSA","alg":"RS256","kid":%q,"n":%q,"e":%q}]}`, s.kid, b64(s.key.N.Bytes()), b64(e))
}

func (s *rs256) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": s.kid}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Istio's JWT tasks at the gateway: a RequestAuthentication verifies
// tokens and an AuthorizationPolicy requires a request principal and a
// claim, read by RBAC from the claims jwt_authn wrote to metadata.
func TestRunJWTAuthorization(t *testing.T) {
	be := startBackend(t, "echo", "v1")
	_, bp, _ := net.SplitHostPort(be.Addr())
	var backendPort int
	fmt.Sscan(bp, &backendPort)
	port := freePort(t)
	signer := newRS256(t)
	jwks, _ := json.Marshal(signer.jwks())
	config := fmt.Sprintf(authzGateway, port, backendPort) + fmt.Sprintf(`---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  jwtRules:
  - issuer: testing@secure.istio.io
    jwks: %s
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-jwt
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  action: ALLOW
  rules:
  - from:
    - source:
        requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
    to:
    - operation:
        paths: ["/productpage"]
  - from:
    - source:
        requestPrincipals: ["*"]
    to:
    - operation:
        paths: ["/secure*"]
    when:
    - key: request.auth.claims[groups]
      values: ["group1"]
`, jwks)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _ := startRun(t, "--config", dir, "--admin", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

	exp := time.Now().Add(time.Hour).Unix()
	good := signer.token(t, map[string]any{"iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io", "exp": exp})
	group1 := signer.token(t, map[string]any{"iss": "testing@secure.istio.io", "sub": "alice", "groups": []string{"group1", "group2"}, "exp": exp})
	group2 := signer.token(t, map[string]any{"iss": "testing@secure.istio.io", "sub": "bob", "groups": []string{"group2"}, "exp": exp})
	other := newRS256(t).token(t, map[string]any{"iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io", "exp": exp})

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cl := &http.Client{Timeout: 5 * time.Second}
	do := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, func() bool { st, _ := do("/productpage", ""); return st == 403 })
	for _, tc := range []struct {
		name, path, token string
		status            int
		body              string
	}{
		{"no token", "/productpage", "", 403, "RBAC: access denied"},
		{"principal matches", "/productpage", good, 200, ""},
		{"bad signature", "/productpage", other, 401, "Jwt verification fails"},
		{"other principal", "/productpage", group1, 403, "RBAC: access denied"},
		{"claim in list", "/secure/users", group1, 200, ""},
		{"claim not in list", "/secure/users", group2, 403, "RBAC: access denied"},
		{"no token for secure", "/secure/users", "", 403, "RBAC: access denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := do(tc.path, tc.token)
			if st != tc.status || (tc.body != "" && body != tc.body) {
				t.Errorf("got %d %q, want %d %q", st, body, tc.status, tc.body)
			}
		})
	}
}
