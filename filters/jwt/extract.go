package jwt

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/matcher"
)

type locationKind uint8

const (
	fromHeader locationKind = iota
	fromParam
	fromCookie
)

// location is one place a token is looked for, with the issuers of the
// providers that look there: a token found there is only verified by a
// provider whose issuer it names, which is how Envoy keeps a token of
// one issuer in a header meant for another from being accepted.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto#envoy-v3-api-field-extensions-filters-http-jwt-authn-v3-jwtprovider-from-headers
type location struct {
	kind   locationKind
	name   string // canonical header name, query parameter or cookie name
	prefix string
	// issuers are the issuers allowed here; anyIssuer is set when a
	// provider without an issuer uses the location.
	issuers   []string
	anyIssuer bool
}

func (l *location) allows(iss string) bool {
	if l.anyIssuer {
		return true
	}
	for _, i := range l.issuers {
		if i == iss {
			return true
		}
	}
	return false
}

// extractor finds the tokens of a set of providers in a request.
type extractor struct {
	locs []*location
	// sanitize are the headers a verified token writes
	// (forward_payload_header, claim_to_headers): a client cannot send
	// them, they are removed before verification.
	sanitize []string
	hasParam bool
}

// found is a token and where it came from.
type found struct {
	raw string
	loc *location
}

// providerLocations lists where one provider looks, with Envoy's
// default when it names none: "Authorization: Bearer <token>" and the
// access_token query parameter.
func providerLocations(pb *jwtauthnv3.JwtProvider) []location {
	var out []location
	for _, h := range pb.GetFromHeaders() {
		out = append(out, location{kind: fromHeader, name: textproto.CanonicalMIMEHeaderKey(h.GetName()), prefix: h.GetValuePrefix()})
	}
	for _, p := range pb.GetFromParams() {
		out = append(out, location{kind: fromParam, name: p})
	}
	for _, c := range pb.GetFromCookies() {
		out = append(out, location{kind: fromCookie, name: c})
	}
	if len(out) == 0 {
		out = []location{
			{kind: fromHeader, name: "Authorization", prefix: "Bearer "},
			{kind: fromParam, name: "access_token"},
		}
	}
	return out
}

// newExtractor merges the locations of providers, as Envoy's
// ExtractorImpl: one location per (kind, name, prefix), carrying every
// issuer that uses it.
func newExtractor(ps []*provider) *extractor {
	e := &extractor{}
	for _, p := range ps {
		for _, l := range p.locations {
			var m *location
			for _, have := range e.locs {
				if have.kind == l.kind && have.name == l.name && have.prefix == l.prefix {
					m = have
					break
				}
			}
			if m == nil {
				m = &location{kind: l.kind, name: l.name, prefix: l.prefix}
				e.locs = append(e.locs, m)
				if l.kind == fromParam {
					e.hasParam = true
				}
			}
			if p.issuer == "" {
				m.anyIssuer = true
			} else {
				m.issuers = append(m.issuers, p.issuer)
			}
		}
		if p.payloadHeader != "" {
			e.sanitize = append(e.sanitize, p.payloadHeader)
		}
		for _, c := range p.claimHeaders {
			e.sanitize = append(e.sanitize, c.header)
		}
	}
	return e
}

// extract returns every token the request carries in the extractor's
// locations, in location order.
func (e *extractor) extract(req *filters.Request) []found {
	var out []found
	var query url.Values
	if e.hasParam {
		if _, q, ok := strings.Cut(req.Path, "?"); ok {
			query, _ = url.ParseQuery(q)
		}
	}
	for _, l := range e.locs {
		switch l.kind {
		case fromHeader:
			for _, v := range req.Header[l.name] {
				if t := tokenAfterPrefix(v, l.prefix); t != "" {
					out = append(out, found{raw: t, loc: l})
				}
			}
		case fromParam:
			for _, v := range query[l.name] {
				if v != "" {
					out = append(out, found{raw: v, loc: l})
				}
			}
		case fromCookie:
			for _, line := range req.Header["Cookie"] {
				cs, err := http.ParseCookie(line)
				if err != nil {
					continue
				}
				for _, c := range cs {
					if c.Name == l.name && c.Value != "" {
						out = append(out, found{raw: c.Value, loc: l})
					}
				}
			}
		}
	}
	return out
}

// tokenAfterPrefix extracts the token from a header value: the whole
// trimmed value without a prefix; with one, the token characters after
// the prefix wherever it occurs (Envoy's extractJWT), the prefix's
// scheme matched case-insensitively at the start as RFC 6750 asks for
// "Bearer".
func tokenAfterPrefix(v, prefix string) string {
	if prefix == "" {
		return strings.TrimSpace(v)
	}
	i := strings.Index(v, prefix)
	if i < 0 {
		if !matcher.HasPrefixFold(v, prefix) {
			return ""
		}
		i = 0
	}
	v = v[i+len(prefix):]
	n := 0
	for n < len(v) && isTokenChar(v[n]) {
		n++
	}
	return v[:n]
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '=' || c == '+' || c == '/'
}

// remove takes a verified token out of the request when its provider
// does not forward it. Like Envoy, only header tokens are removed (the
// whole header); parameters and cookies stay.
func (f *found) remove(req *filters.Request) {
	if f.loc.kind == fromHeader {
		req.Header.Del(f.loc.name)
	}
}
