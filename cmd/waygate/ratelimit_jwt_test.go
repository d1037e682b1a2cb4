package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"
)

// claimSigner issues RS256 JWTs and publishes its key as a JWKS.
type claimSigner struct{ key *rsa.PrivateKey }

func newClaimSigner(t *testing.T) *claimSigner {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &claimSigner{key: k}
}

func (s *claimSigner) jwks() string {
	b64 := base64.RawURLEncoding.EncodeToString
	return fmt.Sprintf(`{"keys":[{"kty":"RSA","alg":"RS256","kid":"rl","n":%q,"e":%q}]}`,
		b64(s.key.N.Bytes()), b64(big.NewInt(int64(s.key.E)).Bytes()))
}

func (s *claimSigner) sign(t *testing.T, sub string) string {
	t.Helper()
	part := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := part(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "rl"}) + "." +
		part(map[string]any{"iss": "issuer.example", "sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

const claimPolicy = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  selector:
    matchLabels: {istio: ingressgateway}
  jwtRules:
  - issuer: issuer.example
    jwks: %s
---
apiVersion: waygate.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: per-user, namespace: istio-system}
spec:
  rules:
  - by: jwtClaim
    claim: sub
    local: {requests: 2, per: hour}
`

// A limit by JWT claim counts each subject apart, reading the claim
// jwt_authn validated into dynamic metadata; requests without a token
// are not counted by it.
func TestRunRateLimitByJWTClaim(t *testing.T) {
	b := startBackend(t, "echo", "v1")
	port := freePort(t)
	signer := newClaimSigner(t)
	jwks, _ := json.Marshal(signer.jwks())
	startRateLimitedRun(t, rateLimitDir(t, port, b.Addr(), fmt.Sprintf(claimPolicy, jwks)))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	c := &http.Client{Timeout: 5 * time.Second}
	alice, bob := signer.sign(t, "alice"), signer.sign(t, "bob")
	for i, s := range []struct {
		token string
		want  int
	}{{alice, 200}, {alice, 200}, {alice, 429}, {bob, 200}, {"", 200}, {"", 200}, {"", 200}, {bob, 200}, {bob, 429}} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if s.token != "" {
			req.Header.Set("Authorization", "Bearer "+s.token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != s.want {
			t.Errorf("request %d: %d, want %d", i+1, resp.StatusCode, s.want)
		}
	}
}
