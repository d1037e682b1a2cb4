package jwt

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"

	jwtv5 "github.com/golang-jwt/jwt/v5"
)

// token is a parsed, not yet verified JWS compact token (RFC 7515
// section 7.1) with the registered claims Envoy reads.
type token struct {
	alg, kid string
	header   map[string]any
	payload  map[string]any
	// payloadB64 is the payload segment as received, for
	// forward_payload_header.
	payloadB64 string
	// signed is header.payload, the JWS signing input.
	signed string
	sig    []byte

	iss, sub      string
	aud           []string
	exp, nbf, iat int64 // 0 when absent
}

// methods are the JWS algorithms Envoy verifies. "none" is not among
// them: an unsigned token is refused like any unknown algorithm.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/jwt_authn_filter
var methods = map[string]jwtv5.SigningMethod{
	"RS256": jwtv5.SigningMethodRS256, "RS384": jwtv5.SigningMethodRS384, "RS512": jwtv5.SigningMethodRS512,
	"PS256": jwtv5.SigningMethodPS256, "PS384": jwtv5.SigningMethodPS384, "PS512": jwtv5.SigningMethodPS512,
	"ES256": jwtv5.SigningMethodES256, "ES384": jwtv5.SigningMethodES384, "ES512": jwtv5.SigningMethodES512,
	"HS256": jwtv5.SigningMethodHS256, "HS384": jwtv5.SigningMethodHS384, "HS512": jwtv5.SigningMethodHS512,
	"EdDSA": jwtv5.SigningMethodEdDSA,
}

// parseToken splits and decodes a token, checking the shapes
// jwt_verify_lib's Jwt::parseFromString checks, in its order, so a
// malformed token gets the same status as under Envoy.
func parseToken(s string) (*token, status) {
	h, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, statusBadFormat
	}
	p, sg, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sg, ".") {
		return nil, statusBadFormat
	}
	t := &token{payloadB64: p, signed: s[:len(h)+1+len(p)]}

	hb, err := b64(h)
	if err != nil || json.Unmarshal(hb, &t.header) != nil || t.header == nil {
		return nil, statusHeaderParse
	}
	alg, ok := t.header["alg"].(string)
	if !ok {
		return nil, statusHeaderBadAlg
	}
	if _, ok := methods[alg]; !ok {
		return nil, statusHeaderAlgNotImplemented
	}
	t.alg = alg
	if v, ok := t.header["kid"]; ok {
		kid, ok := v.(string)
		if !ok {
			return nil, statusHeaderBadKid
		}
		t.kid = kid
	}

	pb, err := b64(p)
	if err != nil || !isJSONObject(pb) || json.Unmarshal(pb, &t.payload) != nil || t.payload == nil {
		return nil, statusPayloadParse
	}
	if !t.readClaims() {
		return nil, statusPayloadParse
	}

	if t.sig, err = b64(sg); err != nil {
		return nil, statusSignatureParse
	}
	return t, statusOK
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// readClaims reads iss, sub, aud, exp, nbf and iat, which must have the
// types RFC 7519 section 4.1 gives them; anything else is a payload
// parse error, as in jwt_verify_lib.
func (t *token) readClaims() bool {
	var ok bool
	if v, has := t.payload["iss"]; has {
		if t.iss, ok = v.(string); !ok {
			return false
		}
	}
	if v, has := t.payload["sub"]; has {
		if t.sub, ok = v.(string); !ok {
			return false
		}
	}
	switch v := t.payload["aud"].(type) {
	case nil:
	case string:
		t.aud = []string{v}
	case []any:
		for _, a := range v {
			s, ok := a.(string)
			if !ok {
				return false
			}
			t.aud = append(t.aud, s)
		}
	default:
		return false
	}
	for _, c := range [...]struct {
		name string
		dst  *int64
	}{{"exp", &t.exp}, {"nbf", &t.nbf}, {"iat", &t.iat}} {
		v, has := t.payload[c.name]
		if !has {
			continue
		}
		f, ok := v.(float64)
		// A NumericDate Envoy accepts is a non-negative integer.
		if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxInt64/2 {
			return false
		}
		*c.dst = int64(f)
	}
	return true
}

// verifyTime applies nbf and exp with the clock skew, as
// jwt_verify_lib's verifyTimeConstraint: iat is parsed but not checked.
func (t *token) verifyTime(now, skew int64) status {
	if t.nbf > now+skew {
		return statusNotYetValid
	}
	if t.exp != 0 && now > t.exp+skew {
		return statusExpired
	}
	return statusOK
}

// verifySignature tries the keys of ks that fit the token: same kid when
// both have one (every key when the token has none), a key type and
// curve matching alg, the key's own alg when it declares one. An HS
// token can only meet an oct key and an RS token only an RSA key, which
// closes the RS/HS confusion attack.
func (t *token) verifySignature(ks *keySet) status {
	m := methods[t.alg]
	matched := false
	for i := range ks.keys {
		k := &ks.keys[i]
		if t.kid != "" && k.kid != "" && k.kid != t.kid {
			continue
		}
		if !k.fits(t.alg) {
			continue
		}
		matched = true
		if m.Verify(t.signed, t.sig, k.pub) == nil {
			return statusOK
		}
	}
	if !matched {
		return statusKidAlgMismatch
	}
	return statusVerificationFail
}

// hasKid reports whether ks has a key for the token's kid, which tells
// a remote source whether an unknown kid calls for a refetch.
func (ks *keySet) hasKid(kid string) bool {
	if kid == "" {
		return true
	}
	for i := range ks.keys {
		if ks.keys[i].kid == "" || ks.keys[i].kid == kid {
			return true
		}
	}
	return false
}

func (k *key) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg[:2] {
	case "RS", "PS":
		return k.kty == "RSA"
	case "ES":
		return k.kty == "EC" && ecAlg[k.crv] == alg
	case "Ed":
		return k.kty == "OKP"
	case "HS":
		return k.kty == "oct"
	}
	return false
}

// rawPayload is the payload as forward_payload_header sends it:
// base64url, unpadded unless pad is set.
func (t *token) rawPayload(pad bool) string {
	p := strings.TrimRight(t.payloadB64, "=")
	if pad {
		if n := len(p) % 4; n != 0 {
			p += strings.Repeat("=", 4-n)
		}
	}
	return p
}
