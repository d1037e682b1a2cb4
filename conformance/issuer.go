package conformance

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// issuer is a backend of kind "jwks": a JWT issuer with its own RSA key,
// serving its JWKS over HTTP (any path) for RequestAuthentication's
// jwksUri, and signing the tokens that {{token "<name>" ...}} asks for
// in a check's request. Its key id is the backend's service name, so
// two issuers of one service make an impostor: same kid, another key.
// A scenario makes a token no one trusts by signing it with an issuer
// the YAML does not name.
type issuer struct {
	kid  string
	key  *rsa.PrivateKey
	srv  *http.Server
	ln   net.Listener
	jwks []byte
}

func startIssuer(kid string) (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	is := &issuer{kid: kid, key: key}
	is.jwks, _ = json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": is.kid,
		"n": b64(key.PublicKey.N.Bytes()),
		"e": b64(big.NewInt(int64(key.PublicKey.E)).Bytes()),
	}}})
	if is.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	is.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(is.jwks)
	})}
	go is.srv.Serve(is.ln)
	return is, nil
}

func (is *issuer) Close() error { return is.srv.Close() }

func (is *issuer) addr() string { return is.ln.Addr().String() }

// sign returns an RS256 JWT with the claims given as "name=value":
// exp, nbf and iat take a duration from now ("exp=+1h", "exp=-1m" for an
// expired token); a value in brackets is a list ("groups=[a,b]"); a
// number stays a number; anything else is a string. Without exp the
// token is valid for an hour.
func (is *issuer) sign(claims ...string) (string, error) {
	now := time.Now()
	payload := map[string]any{"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for _, c := range claims {
		k, v, ok := strings.Cut(c, "=")
		if !ok {
			return "", fmt.Errorf("token claim %q: want name=value", c)
		}
		switch {
		case (k == "exp" || k == "nbf" || k == "iat") && (strings.HasPrefix(v, "+") || strings.HasPrefix(v, "-")):
			d, err := time.ParseDuration(v)
			if err != nil {
				return "", fmt.Errorf("token claim %s: %q: want a duration from now such as +1h or -5m", k, v)
			}
			payload[k] = now.Add(d).Unix()
		case strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]"):
			payload[k] = strings.Split(strings.Trim(v, "[]"), ",")
		default:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				payload[k] = n
			} else {
				payload[k] = v
			}
		}
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": is.kid})
	body, _ := json.Marshal(payload)
	signing := b64(header) + "." + b64(body)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, is.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
