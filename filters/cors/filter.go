package cors

import (
	"net/http"

	"github.com/waygate/waygate/filters"
)

// filter is one stream's CORS filter.
type filter struct {
	f      *Factory
	policy *Policy
	// origin is the request's Origin when the policy is enforced and
	// allows it: the value echoed in access-control-allow-origin.
	origin string
	// answered is set when the filter answered a preflight itself; its
	// reply already carries every header the response phase would add.
	answered bool
}

// OnRequestHeaders is Envoy's decodeHeaders: count the origin, and answer
// a preflight (OPTIONS with Origin and Access-Control-Request-Method)
// locally. A preflight from an origin the policy does not allow goes on
// to the upstream untouched unless forward_not_matching_preflights is
// false, in which case it gets a 200 without access-control-allow-origin,
// which the browser reads as a refusal.
// https://www.w3.org/TR/cors/#resource-preflight-requests
func (fl *filter) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	// The route may have been matched again since the filter was made.
	if p := policyFor(x); p != nil {
		fl.policy = p
	}
	p := fl.policy
	enforce, shadow := p.mode()
	if !enforce && !shadow {
		return filters.Continue
	}
	origin := x.Request.Header.Get("Origin")
	if origin == "" {
		return filters.Continue
	}
	allowed := p.allowed(origin)
	if allowed {
		fl.f.valid.Inc()
	} else {
		fl.f.invalid.Inc()
	}
	if !enforce {
		return filters.Continue
	}
	if allowed {
		fl.origin = origin
	}
	requestMethod := x.Request.Header.Get("Access-Control-Request-Method")
	if x.Request.Method != http.MethodOptions || requestMethod == "" {
		return filters.Continue
	}
	if !allowed && p.forwardNotMatching {
		return filters.Continue
	}
	h := http.Header{}
	if allowed {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if p.allowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	switch p.allowMethods {
	case "":
	case "*":
		// Envoy echoes the requested method for a wildcard, which also
		// works for credentialed requests where "*" is literal.
		h.Set("Access-Control-Allow-Methods", requestMethod)
	default:
		h.Set("Access-Control-Allow-Methods", p.allowMethods)
	}
	switch p.allowHeaders {
	case "":
	case "*":
		if rh := x.Request.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
	default:
		h.Set("Access-Control-Allow-Headers", p.allowHeaders)
	}
	if p.maxAge != "" {
		h.Set("Access-Control-Max-Age", p.maxAge)
	}
	// https://developer.chrome.com/blog/private-network-access-preflight
	if p.allowPrivateNetworkAccess && x.Request.Header.Get("Access-Control-Request-Private-Network") == "true" {
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	fl.answered = true
	x.SendLocalReply(filters.LocalReply{Status: http.StatusOK, Header: h, Details: "cors_response"})
	return filters.Stop
}

// OnResponseHeaders is Envoy's encodeHeaders for an actual (non-preflight)
// cross-origin request from an allowed origin, whether the response comes
// from the upstream or from another filter's local reply. Like Envoy it
// does not add Vary: Origin; an upstream that varies on Origin says so.
// https://www.w3.org/TR/cors/#resource-requests
func (fl *filter) OnResponseHeaders(x *filters.Exchange, _ bool) filters.Status {
	if fl.origin == "" || fl.answered {
		return filters.Continue
	}
	if x.Response.Header == nil {
		x.Response.Header = http.Header{}
	}
	h := x.Response.Header
	h.Set("Access-Control-Allow-Origin", fl.origin)
	if fl.policy.allowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if fl.policy.exposeHeaders != "" {
		h.Set("Access-Control-Expose-Headers", fl.policy.exposeHeaders)
	}
	return filters.Continue
}
