package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jwtv5 "github.com/golang-jwt/jwt/v5"
)

// jwtConfig is a gateway routing to one echo backend, with a
// RequestAuthentication whose keys a JWKS server on loopback serves.
const jwtConfig = echoGateway + `---
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
  - issuer: testing@waygate.test
    jwksUri: http://127.0.0.1:%d/jwks.json
    outputClaimToHeaders:
    - {header: x-jwt-sub, claim: sub}
`

// TestRunRequestAuthentication runs the seed's RequestAuthentication
// step on `waygate run`: the gateway fetches the issuer's keys from a
// real JWKS server through the cluster the translation made for it,
// lets a valid token and a request without a token through (no
// AuthorizationPolicy requires one), and refuses a bad token with 401
// and a Bearer challenge.
func TestRunRequestAuthentication(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwksOf := func(kid string, k *rsa.PrivateKey) []byte {
		b, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
			"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()), "e": "AQAB",
		}}})
		return b
	}
	var keys atomic.Value
	keys.Store(jwksOf("k1", key))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int64
	jwks := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(keys.Load().([]byte))
	})}
	go jwks.Serve(ln)
	t.Cleanup(func() { jwks.Close() })
	jwksPort := ln.Addr().(*net.TCPAddr).Port

	b := startBackend(t, "echo", "v1")
	_, bp, _ := net.SplitHostPort(b.Addr())
	var backendPort int
	fmt.Sscan(bp, &backendPort)
	port := freePort(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(fmt.Sprintf(jwtConfig, port, backendPort, jwksPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stdout, _ := startRun(t, "--config", dir, "--admin", admin, "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

	signWith := func(kid string, k *rsa.PrivateKey, claims jwtv5.MapClaims) string {
		tok := jwtv5.NewWithClaims(jwtv5.SigningMethodRS256, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sign := func(claims jwtv5.MapClaims) string {
		tok := jwtv5.NewWithClaims(jwtv5.SigningMethodRS256, claims)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now().Unix()
	valid := sign(jwtv5.MapClaims{"iss": "testing@waygate.test", "sub": "alice", "iat": now, "exp": now + 600})
	expired := sign(jwtv5.MapClaims{"iss": "testing@waygate.test", "sub": "alice", "exp": now - 3600})
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"testing@waygate.test","sub":"mallory"}`)) + "." + parts[2]

	client := &http.Client{Timeout: 5 * time.Second}
	do := func(token string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/productpage?x=1", port), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, body := do(valid)
	if resp.StatusCode != 200 {
		t.Fatalf("valid token: %d %q", resp.StatusCode, body)
	}
	e := decodeEcho(t, []byte(body))
	if e.Headers["x-jwt-sub"] != "alice" {
		t.Errorf("backend saw x-jwt-sub %q, want the sub claim", e.Headers["x-jwt-sub"])
	}
	if _, ok := e.Headers["authorization"]; ok {
		t.Error("the token was forwarded although forwardOriginalToken is false")
	}

	if resp, body := do(""); resp.StatusCode != 200 {
		t.Errorf("no token: %d %q, want 200 without an AuthorizationPolicy", resp.StatusCode, body)
	}

	for _, c := range []struct{ name, token, body string }{
		{"tampered", tampered, "Jwt verification fails"},
		{"expired", expired, "Jwt is expired"},
		{"alg none", strings.TrimRight(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)), "=") + "." + parts[1] + ".", "Jwt header [alg] field value is invalid"},
		{"garbage", "not-a-jwt", "Jwt is not in the form of Header.Payload.Signature"},
	} {
		resp, body := do(c.token)
		if resp.StatusCode != 401 || body != c.body {
			t.Errorf("%s: %d %q, want 401 %q", c.name, resp.StatusCode, body, c.body)
		}
		want := fmt.Sprintf(`Bearer realm="http://127.0.0.1:%d/productpage", error="invalid_token"`, port)
		if got := resp.Header.Get("WWW-Authenticate"); got != want {
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, got, want)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want once (cached)", n)
	}

	sresp, err := client.Get("http://" + admin + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	stats, _ := io.ReadAll(sresp.Body)
	sresp.Body.Close()
	for _, s := range []string{"jwt_authn.allowed: 2", "jwt_authn.denied: 4", "jwt_authn.jwks_fetch_success: 1"} {
		if !strings.Contains(string(stats), s) {
			t.Errorf("/stats lacks %q", s)
		}
	}

	// The issuer rotates to a new key: the first token naming the new
	// kid makes the gateway fetch the set again (at most once a second),
	// without a restart or a config push.
	key2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys.Store(jwksOf("k2", key2))
	rotated := signWith("k2", key2, jwtv5.MapClaims{"iss": "testing@waygate.test", "sub": "bob", "exp": now + 600})
	var last string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := do(rotated)
		if resp.StatusCode == 200 {
			break
		}
		last = fmt.Sprintf("%d %q", resp.StatusCode, body)
		if time.Now().After(deadline) {
			t.Fatalf("token of the rotated key still refused after 10s: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp, body := do(valid); resp.StatusCode != 401 || body != "Jwks doesn't have key to match kid or alg from Jwt" {
		t.Errorf("token of the retired key: %d %q, want 401", resp.StatusCode, body)
	}
}
