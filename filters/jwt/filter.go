package jwt

import (
	"net/http"
	"strings"

	"github.com/waygate/waygate/filters"
)

// filter is the per-stream value. It holds no state of its own, so the
// factory hands out one shared value and a stream costs no allocation
// beyond its verification.
type filter struct{ f *Factory }

// NewFilter takes no part in streams when the config checks nothing (no
// rules and no requirement_map for routes to name).
func (f *Factory) NewFilter(*filters.Exchange) any {
	if len(f.rules) == 0 && len(f.reqMap) == 0 {
		return nil
	}
	return filter{f}
}

// maxRealmURI bounds the URI echoed in WWW-Authenticate, as Envoy's
// MaximumUriLength.
const maxRealmURI = 256

// OnRequestHeaders runs Envoy's decodeHeaders: bypass CORS preflights
// when asked, pick the requirement (the route's requirement_name, else
// the first matching rule), verify, and either publish the payloads and
// continue or answer 401 (403 for a wrong audience or an unknown
// requirement_name).
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/jwt_authn_filter
func (fl filter) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	f := fl.f
	if f.bypassCORS && isCORSPreflight(&x.Request) {
		f.c.corsBypassed.Inc()
		f.c.allowed.Inc()
		return filters.Continue
	}
	var v verifier
	if r := x.MatchedRoute(); r != nil {
		if rc, ok := r.PerFilterConfig(FilterName).(*routeConfig); ok {
			v = f.reqMap[rc.requirement]
			if v == nil {
				f.c.denied.Inc()
				msg := "Wrong requirement_name: " + rc.requirement + ". It should be one of [" + f.requirementNames() + "]"
				body := "Failed JWT authentication: " + msg
				if f.strip {
					body = ""
				}
				x.SendLocalReply(filters.LocalReply{Status: http.StatusForbidden, Body: body,
					Details: "jwt_authn_access_denied{" + strings.ReplaceAll(msg, " ", "_") + "}"})
				return filters.Stop
			}
		}
	}
	if v == nil {
		for i := range f.rules {
			if f.rules[i].match.matches(&x.Request) {
				v = f.rules[i].v
				break
			}
		}
	}
	if v == nil {
		f.c.allowed.Inc()
		return filters.Continue
	}
	if x.Request.Header == nil {
		x.Request.Header = http.Header{}
	}
	run := verification{x: x, f: f, now: f.now().Unix()}
	if st := v.verify(&run); st != statusOK {
		f.c.denied.Inc()
		f.deny(x, st)
		return filters.Stop
	}
	for _, p := range run.payloads {
		x.SetMetadata(FilterName, p.key, p.v)
	}
	if run.clearRoute {
		x.ClearRouteCache()
	}
	f.c.allowed.Inc()
	return filters.Continue
}

// deny answers as Envoy's Filter::onComplete: 403 for audiences, 401
// otherwise, the status text as body and a WWW-Authenticate challenge
// (RFC 6750 section 3) naming the request URI as realm, with
// error="invalid_token" unless the token was missing.
func (f *Factory) deny(x *filters.Exchange, st status) {
	code := http.StatusUnauthorized
	if st == statusAudienceNotAllowed {
		code = http.StatusForbidden
	}
	rep := filters.LocalReply{Status: code, Details: st.details()}
	if !f.strip {
		rep.Body = st.String()
		v := `Bearer realm="` + originalURI(&x.Request) + `"`
		if st != statusMissing {
			v += `, error="invalid_token"`
		}
		rep.Header = http.Header{"Www-Authenticate": {v}}
	}
	x.SendLocalReply(rep)
}

// originalURI is Envoy's Utility::buildOriginalUri: scheme, host and
// path without the query, cut at maxRealmURI, with quotes and
// backslashes dropped so the challenge stays one quoted-string.
func originalURI(r *filters.Request) string {
	scheme := r.Scheme
	if scheme == "" {
		scheme = "http"
	}
	path, _, _ := strings.Cut(r.Path, "?")
	u := scheme + "://" + r.Authority + path
	if len(u) > maxRealmURI {
		u = u[:maxRealmURI]
	}
	if strings.ContainsAny(u, "\"\\") {
		u = strings.NewReplacer(`"`, "", `\`, "").Replace(u)
	}
	return u
}

// isCORSPreflight is Envoy's test: OPTIONS with Origin and
// Access-Control-Request-Method. A preflight carries no credentials.
func isCORSPreflight(r *filters.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}
