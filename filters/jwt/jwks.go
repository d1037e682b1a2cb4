package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// key is one usable key of a JWKS, parsed once when the set is loaded.
// pub is *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or, for a
// symmetric key, []byte: the types golang-jwt's signing methods verify
// with.
type key struct {
	kid string
	alg string // the JWK's own alg, "" when it has none
	kty string // RSA, EC, OKP, oct
	crv string // for EC and OKP
	pub any
}

// keySet is an immutable, parsed JWKS.
type keySet struct {
	keys []key
}

// jwk is the JSON shape of a key (RFC 7517 section 4, RFC 7518 section 6,
// RFC 8037 for OKP).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"`
}

// parseJWKS parses a JSON Web Key Set. As jwt_verify_lib does, a key that
// cannot be used (unknown kty, bad numbers, a curve Go cannot verify) is
// skipped; the set fails only when it is not JSON or keeps no key.
// allowSymmetric is false for remote sets: HMAC secrets are accepted from
// the gateway's own config only, never from a server's answer.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto#envoy-v3-api-field-extensions-filters-http-jwt-authn-v3-jwtprovider-local-jwks
func parseJWKS(data []byte, allowSymmetric bool) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks is not valid JSON: %v", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`jwks has no "keys" array`)
	}
	ks := &keySet{}
	var errs []string
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			errs = append(errs, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.parse(allowSymmetric)
		if err != nil {
			errs = append(errs, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		ks.keys = append(ks.keys, k)
	}
	if len(ks.keys) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("jwks has no usable key (%s)", strings.Join(errs, "; "))
		}
		return nil, errors.New("jwks has no usable key")
	}
	return ks, nil
}

func (j *jwk) parse(allowSymmetric bool) (key, error) {
	k := key{kid: j.Kid, alg: j.Alg, kty: j.Kty, crv: j.Crv}
	switch j.Kty {
	case "RSA":
		if j.Alg != "" && !strings.HasPrefix(j.Alg, "RS") && !strings.HasPrefix(j.Alg, "PS") {
			return k, fmt.Errorf("alg %q does not fit an RSA key", j.Alg)
		}
		n, err := b64Int(j.N)
		if err != nil {
			return k, fmt.Errorf("n: %v", err)
		}
		e, err := b64Int(j.E)
		if err != nil {
			return k, fmt.Errorf("e: %v", err)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || n.Sign() <= 0 {
			return k, errors.New("n or e out of range")
		}
		k.pub = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return k, fmt.Errorf("crv %q is not supported (P-256, P-384, P-521)", j.Crv)
		}
		if j.Alg != "" && j.Alg != ecAlg[j.Crv] {
			return k, fmt.Errorf("alg %q does not fit crv %s", j.Alg, j.Crv)
		}
		x, err := b64Int(j.X)
		if err != nil {
			return k, fmt.Errorf("x: %v", err)
		}
		y, err := b64Int(j.Y)
		if err != nil {
			return k, fmt.Errorf("y: %v", err)
		}
		pub := &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
		// Refuse points off the curve: verifying against one is
		// meaningless and the ecdsa package may reject it late.
		if _, err := pub.ECDH(); err != nil {
			return k, fmt.Errorf("point is not on %s", j.Crv)
		}
		k.pub = pub
	case "OKP":
		if j.Crv != "Ed25519" {
			return k, fmt.Errorf("crv %q is not supported (Ed25519)", j.Crv)
		}
		if j.Alg != "" && j.Alg != "EdDSA" {
			return k, fmt.Errorf("alg %q does not fit an OKP key", j.Alg)
		}
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return k, errors.New("x: not a base64url Ed25519 public key")
		}
		k.pub = ed25519.PublicKey(x)
	case "oct":
		if !allowSymmetric {
			return k, errors.New("symmetric (oct) keys are accepted from local_jwks only")
		}
		if j.Alg != "" && !strings.HasPrefix(j.Alg, "HS") {
			return k, fmt.Errorf("alg %q does not fit an oct key", j.Alg)
		}
		s, err := b64(j.K)
		if err != nil || len(s) == 0 {
			return k, errors.New("k: not a base64url secret")
		}
		k.pub = s
	case "":
		return k, errors.New("kty is missing")
	default:
		return k, fmt.Errorf("kty %q is not supported (RSA, EC, OKP, oct)", j.Kty)
	}
	return k, nil
}

// ecAlg is the one JWS algorithm each curve signs with (RFC 7518 3.4).
var ecAlg = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

// b64 decodes base64url with or without padding, as issuers emit both.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func b64Int(s string) (*big.Int, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	b, err := b64(s)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}
