package authz

import (
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"

	"github.com/waygate/waygate/filters"
)

// Local reply of a denied request, as Envoy sends it.
const (
	deniedBody    = "RBAC: access denied"
	deniedDetails = "rbac_access_denied_matched_policy["
)

// Dynamic metadata the LOG action writes: Envoy marks a matched request
// for access logs with envoy.common access_log_hint.
const (
	commonNamespace = "envoy.common"
	accessLogHint   = "access_log_hint"
)

// filter is the stateless per-stream filter, shared by all streams of a
// factory.
type filter struct{ f *Factory }

// OnRequestHeaders is Envoy's RoleBasedAccessControlFilter::decodeHeaders:
// the shadow engine runs first and only records its verdict (stats and
// dynamic metadata); then the enforced engine allows the request or
// answers 403.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/rbac_filter
func (fl *filter) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	f := fl.f
	c := f.settings(x)
	if c == nil {
		return filters.Continue
	}
	if e := c.shadow; e != nil {
		allowed, id, _ := e.allows(x)
		result := "allowed"
		if allowed {
			f.st.shadowAllowed.Inc()
		} else {
			f.st.shadowDenied.Inc()
			result = "denied"
		}
		if id != "" {
			x.SetMetadata(FilterName, c.shadowIDKey, id)
		}
		x.SetMetadata(FilterName, c.shadowResultKey, result)
	}
	e := c.engine
	if e == nil {
		return filters.Continue
	}
	allowed, id, matched := e.allows(x)
	if e.action == rbacv3.RBAC_LOG {
		x.SetMetadata(commonNamespace, accessLogHint, matched)
		if matched {
			f.st.logged.Inc()
		} else {
			f.st.notLogged.Inc()
		}
	}
	if allowed {
		f.st.allowed.Inc()
		return filters.Continue
	}
	f.st.denied.Inc()
	if id == "" {
		id = "none"
	}
	x.SendLocalReply(filters.LocalReply{
		Status:  403,
		Body:    deniedBody,
		Details: deniedDetails + id + "]",
	})
	return filters.Stop
}
