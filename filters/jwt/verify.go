package jwt

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/waygate/waygate/filters"
)

// verification is one request's run through a requirement: the
// payloads to publish if the requirement as a whole is met, and whether
// a claim copied into a header asks for routing again.
type verification struct {
	x          *filters.Exchange
	f          *Factory
	now        int64
	payloads   []payloadEntry
	clearRoute bool
}

type payloadEntry struct {
	key string
	v   any
}

// authenticate verifies one token in the order of Envoy's
// AuthenticatorImpl::startVerify: parse, issuer (for the location it was
// found in), time, audiences, then the signature against the provider's
// keys, fetching them first when they are remote. p is nil for
// allow_missing and allow_missing_or_failed, where the issuer picks the
// provider; aud overrides the provider's audiences when not nil
// (provider_and_audiences).
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/jwt_authn_filter
func (v *verification) authenticate(ft found, p *provider, aud []string) status {
	if len(ft.raw) > maxTokenSize {
		return statusTooLarge
	}
	var t *token
	cached := false
	// Only a provider's own requirement uses its cache, as in Envoy.
	var cache *tokenCache
	if p != nil {
		cache = p.cache
	}
	// bound is the key set that verified the token found in the
	// provider's key-bound cache, if any.
	var bound *keySet
	if cache != nil {
		if t, cached = cache.get(ft.raw); cached {
			v.f.c.cacheHit.Inc()
		} else {
			v.f.c.cacheMiss.Inc()
		}
	} else if p != nil {
		if e, ok := p.verified.lookup(ft.raw); ok {
			t, bound = e.t, e.ks
		}
	}
	if t == nil {
		var st status
		if t, st = parseToken(ft.raw); st != statusOK {
			return st
		}
	}
	if !ft.loc.allows(t.iss) {
		return statusUnknownIssuer
	}
	if p == nil {
		if p = v.f.byIssuer(t.iss); p == nil {
			return statusUnknownIssuer
		}
	}
	if st := t.verifyTime(v.now, p.skew); st != statusOK {
		return st
	}
	if p.requireExp && t.exp == 0 {
		return statusNoExpiration
	}
	if p.maxLifetime > 0 && (t.exp == 0 || t.iat == 0 || t.exp-t.iat > p.maxLifetime) {
		return statusLifetimeTooLong
	}
	if aud == nil {
		aud = p.audiences
	}
	if !audienceAllowed(aud, t.aud) {
		return statusAudienceNotAllowed
	}
	if p.subjects != nil && !p.subjects.Match(t.sub) {
		return statusVerificationFail
	}
	if !cached {
		ks, st := p.src.keys(v.x.Context, t.kid)
		if st != statusOK {
			return st
		}
		if bound == nil && cache == nil {
			// The issuer picked the provider (allow_missing): its
			// key-bound cache is looked up only now.
			if e, ok := p.verified.lookup(ft.raw); ok {
				bound = e.ks
			}
		}
		if bound == nil || bound != ks {
			if st := t.verifySignature(ks); st != statusOK {
				return st
			}
			if cache != nil {
				cache.put(ft.raw, t)
			} else {
				p.verified.putVerified(ft.raw, t, ks)
			}
		}
	}
	v.accept(p, t, ft)
	return statusOK
}

// accept applies what a provider does with a verified token, as Envoy's
// handleGoodJwt: forward the payload and claims in headers, drop the
// token unless forward is set, keep header and payload for the dynamic
// metadata. With clear_route_cache, the route is matched again when a
// claim header was added or the payload went to the metadata.
func (v *verification) accept(p *provider, t *token, ft found) {
	h := v.x.Request.Header
	if p.payloadHeader != "" {
		h.Add(p.payloadHeader, t.rawPayload(p.padPayload))
	}
	for _, c := range p.claimHeaders {
		if s, ok := claimString(t.payload, c.path); ok {
			h.Add(c.header, s)
			if p.clearRouteCache {
				v.clearRoute = true
			}
		}
	}
	if !p.forward {
		ft.remove(&v.x.Request)
	}
	if p.headerMeta != "" {
		v.payloads = append(v.payloads, payloadEntry{p.headerMeta, t.header})
	}
	if p.payloadMeta != "" {
		v.payloads = append(v.payloads, payloadEntry{p.payloadMeta, normalizePayload(t.payload, p.spaceDelimited)})
		// Routes may match on the payload (dynamic_metadata), as
		// Istio's JWT claim routes do.
		if p.clearRouteCache {
			v.clearRoute = true
		}
	}
}

// claimString reads a claim for claim_to_headers: strings as they are,
// whole numbers without a fraction, booleans as true/false, objects and
// arrays as their JSON in base64, as Envoy copies them; absent claims
// add no header.
func claimString(payload map[string]any, path []string) (string, bool) {
	var v any = payload
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[k]; !ok {
			return "", false
		}
	}
	switch c := v.(type) {
	case string:
		return c, c != ""
	case float64:
		if c >= 0 && c < math.MaxUint64 && c == math.Trunc(c) {
			return strconv.FormatUint(uint64(c), 10), true
		}
		return strconv.FormatFloat(c, 'f', 6, 64), true
	case bool:
		return strconv.FormatBool(c), true
	case map[string]any, []any:
		b, err := json.Marshal(c)
		if err != nil {
			return "", false
		}
		return base64.StdEncoding.EncodeToString(b), true
	}
	return "", false
}

// normalizePayload splits the space-delimited claims Istio names
// (scope, permission) into lists, so a policy can match one scope.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto#envoy-v3-api-msg-extensions-filters-http-jwt-authn-v3-jwtprovider-normalizepayload
func normalizePayload(payload map[string]any, claims []string) map[string]any {
	out, copied := payload, false
	for _, c := range claims {
		s, ok := payload[c].(string)
		if !ok {
			continue
		}
		if !copied {
			out, copied = make(map[string]any, len(payload)), true
			for k, v := range payload {
				out[k] = v
			}
		}
		fields := strings.Fields(s)
		list := make([]any, len(fields))
		for i, f := range fields {
			list[i] = f
		}
		out[c] = list
	}
	return out
}
