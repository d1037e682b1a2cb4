package conformance

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A token from {{token}} verifies with the key set the issuer serves,
// and carries the claims asked for.
func TestIssuerTokenVerifiesWithServedJWKS(t *testing.T) {
	is, err := startIssuer("issuer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { is.Close() })
	resp, err := http.Get("http://" + is.addr() + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, N, E string }
	}
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", body, err)
	}
	n, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].N)
	e, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}

	p := &ports{issuers: map[string]*issuer{"issuer": is}}
	tok, err := p.expand("header", `{{token "issuer" "iss=testing@secure.istio.io" "sub=alice" "groups=[group1,group2]" "exp=-1m"}}`)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q: want three parts", tok)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("signature does not verify with the served key: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss, Sub string
		Groups   []string
		Exp      int64
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Iss != "testing@secure.istio.io" || claims.Sub != "alice" || len(claims.Groups) != 2 || claims.Exp >= time.Now().Unix() {
		t.Errorf("claims %+v: want iss, sub, two groups and an expiry in the past", claims)
	}
	if _, err := p.expand("header", `{{token "nobody"}}`); err == nil || !strings.Contains(err.Error(), `no backend of kind jwks named "nobody"`) {
		t.Errorf("unknown issuer: %v", err)
	}
}
