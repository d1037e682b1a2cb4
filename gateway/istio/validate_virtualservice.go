package istio

import (
	"fmt"
	"strings"

	"istio.io/api/networking/v1alpha3"
)

// virtualService checks a VirtualService; see
// https://istio.io/latest/docs/reference/config/networking/virtual-service/
func (v *validator) virtualService(key Key, vs *v1alpha3.VirtualService) {
	// A VirtualService without hosts is a delegate: its http rules serve
	// the root VirtualService rules that delegate to it, and only those.
	delegate := len(vs.GetHosts()) == 0
	if delegate {
		if len(vs.GetGateways()) > 0 {
			v.errorf(key, "spec.gateways", "a delegate VirtualService (one without hosts) takes the gateways of the rules delegating to it; name hosts, or remove gateways")
		}
		if len(vs.GetTcp()) > 0 || len(vs.GetTls()) > 0 {
			v.errorf(key, "spec.tcp", "a delegate VirtualService (one without hosts) has http rules only; name hosts for tcp and tls routes")
		}
		if len(vs.GetHttp()) == 0 {
			v.errorf(key, "spec.hosts", "required: name at least one host the routes apply to, or give a delegate http rules")
		}
	}
	for i, h := range vs.GetHosts() {
		if h == "" {
			v.errorf(key, indexPath("spec.hosts", i), "must not be empty")
		}
	}
	v.gatewayRefs(key, "spec.gateways", vs.GetGateways())
	v.exportTo(key, vs.GetExportTo())
	for i, r := range vs.GetHttp() {
		p := indexPath("spec.http", i)
		v.httpRoute(key, p, r)
		if d := r.GetDelegate(); d != nil {
			switch {
			case delegate:
				v.errorf(key, p+".delegate", "a delegate VirtualService cannot delegate further")
			case d.GetName() == "":
				v.errorf(key, p+".delegate.name", "required: the delegate VirtualService's name")
			case len(r.GetRoute()) > 0 || r.GetRedirect() != nil || r.GetDirectResponse() != nil:
				v.errorf(key, p+".delegate", "a rule that delegates has no route, redirect or directResponse of its own")
			}
		}
	}
	for i, r := range vs.GetTcp() {
		p := indexPath("spec.tcp", i)
		for j, m := range r.GetMatch() {
			mp := indexPath(p+".match", j)
			v.optionalPort(key, mp+".port", m.GetPort())
			v.gatewayRefs(key, mp+".gateways", m.GetGateways())
		}
		v.l4Routes(key, p+".route", r.GetRoute())
	}
	for i, r := range vs.GetTls() {
		p := indexPath("spec.tls", i)
		for j, m := range r.GetMatch() {
			mp := indexPath(p+".match", j)
			if len(m.GetSniHosts()) == 0 {
				v.errorf(key, mp+".sniHosts", "required: a TLS route matches on SNI")
			}
			v.optionalPort(key, mp+".port", m.GetPort())
			v.gatewayRefs(key, mp+".gateways", m.GetGateways())
		}
		v.l4Routes(key, p+".route", r.GetRoute())
	}
}

func (v *validator) httpRoute(key Key, p string, r *v1alpha3.HTTPRoute) {
	if len(r.GetRoute()) == 0 && r.GetRedirect() == nil && r.GetDirectResponse() == nil && r.GetDelegate() == nil {
		v.errorf(key, p, "required: one of route, redirect, directResponse or delegate")
	}
	for j, m := range r.GetMatch() {
		mp := indexPath(p+".match", j)
		v.stringMatch(key, mp+".uri", m.GetUri())
		v.stringMatch(key, mp+".scheme", m.GetScheme())
		v.stringMatch(key, mp+".method", m.GetMethod())
		v.stringMatch(key, mp+".authority", m.GetAuthority())
		v.stringMatches(key, mp+".headers", m.GetHeaders())
		v.stringMatches(key, mp+".queryParams", m.GetQueryParams())
		v.stringMatches(key, mp+".withoutHeaders", m.GetWithoutHeaders())
		v.optionalPort(key, mp+".port", m.GetPort())
		v.gatewayRefs(key, mp+".gateways", m.GetGateways())
	}
	weights := make([]int32, 0, len(r.GetRoute()))
	for j, d := range r.GetRoute() {
		dp := indexPath(p+".route", j)
		v.destination(key, dp+".destination", d.GetDestination())
		weights = append(weights, d.GetWeight())
	}
	v.weights(key, p+".route", weights)
	v.nonNegative(key, p+".timeout", r.GetTimeout())
	if rt := r.GetRetries(); rt != nil {
		if rt.GetAttempts() < 0 {
			v.errorf(key, p+".retries.attempts", "must not be negative, got %d", rt.GetAttempts())
		}
		v.nonNegative(key, p+".retries.perTryTimeout", rt.GetPerTryTimeout())
		v.nonNegative(key, p+".retries.backoff", rt.GetBackoff())
	}
	if f := r.GetFault(); f != nil {
		if d := f.GetDelay(); d != nil {
			v.faultPercent(key, p+".fault.delay", d.GetPercent(), d.GetPercentage())
			v.nonNegative(key, p+".fault.delay.fixedDelay", d.GetFixedDelay())
		}
		if a := f.GetAbort(); a != nil {
			v.percent(key, p+".fault.abort.percentage", a.GetPercentage())
			if s, ok := a.GetErrorType().(*v1alpha3.HTTPFaultInjection_Abort_HttpStatus); ok && (s.HttpStatus < 200 || s.HttpStatus > 599) {
				v.errorf(key, p+".fault.abort.httpStatus", "HTTP status %d is out of range 200..599", s.HttpStatus)
			}
		}
	}
	if m := r.GetMirror(); m != nil {
		v.destination(key, p+".mirror", m)
	}
	for j, m := range r.GetMirrors() {
		mp := indexPath(p+".mirrors", j)
		v.destination(key, mp+".destination", m.GetDestination())
		v.percent(key, mp+".percentage", m.GetPercentage())
	}
	v.percent(key, p+".mirrorPercentage", r.GetMirrorPercentage())
	if c := r.GetCorsPolicy(); c != nil {
		for j, o := range c.GetAllowOrigins() {
			v.stringMatch(key, indexPath(p+".corsPolicy.allowOrigins", j), o)
		}
		v.nonNegative(key, p+".corsPolicy.maxAge", c.GetMaxAge())
	}
}

// faultPercent checks the deprecated integer percent and its replacement.
func (v *validator) faultPercent(key Key, p string, percent int32, percentage *v1alpha3.Percent) {
	if percent < 0 || percent > 100 {
		v.errorf(key, p+".percent", "percentage %d is out of range 0..100", percent)
	}
	v.percent(key, p+".percentage", percentage)
}

func (v *validator) l4Routes(key Key, p string, routes []*v1alpha3.RouteDestination) {
	weights := make([]int32, 0, len(routes))
	for j, d := range routes {
		v.destination(key, indexPath(p, j)+".destination", d.GetDestination())
		weights = append(weights, d.GetWeight())
	}
	v.weights(key, p, weights)
}

// weights checks the traffic split of one route: with more than one
// destination, or any weight written, the weights must add up to 100 so
// that the split is the one the user reads.
func (v *validator) weights(key Key, p string, weights []int32) {
	sum, set := int64(0), false
	for j, w := range weights {
		if w < 0 {
			v.errorf(key, indexPath(p, j)+".weight", "must not be negative, got %d", w)
			return
		}
		sum += int64(w)
		set = set || w != 0
	}
	if (len(weights) > 1 || set) && sum != 100 {
		v.errorf(key, indexPath(p, len(weights)-1)+".weight", "weights sum to %d, must be 100", sum)
	}
}

func (v *validator) destination(key Key, p string, d *v1alpha3.Destination) {
	if d == nil {
		v.errorf(key, p, "required: where to send the traffic")
		return
	}
	if d.GetHost() == "" {
		v.errorf(key, p+".host", "required: the service the traffic goes to")
		return
	}
	if pt := d.GetPort(); pt != nil {
		v.optionalPort(key, p+".port.number", pt.GetNumber())
	}
	if host := FQDN(d.GetHost(), key.Namespace); v.registry != nil && !v.known(host) {
		v.warnf(key, p+".host", "host %s is neither a Service nor a ServiceEntry host; requests routed to it will fail with 503", host)
	}
	if d.GetSubset() != "" {
		v.subset(key, p+".subset", FQDN(d.GetHost(), key.Namespace), d.GetSubset())
	}
}

// subset checks that some DestinationRule for host defines the subset:
// without one, Envoy would get a route to a cluster that does not exist
// and answer 503 for every request.
func (v *validator) subset(key Key, p, host, subset string) {
	rules := v.rulesFor(host)
	if len(rules) == 0 {
		v.errorf(key, p, "subset %q is not defined: no DestinationRule for host %s", subset, host)
		return
	}
	var defined []string
	for _, r := range rules {
		for _, n := range r.names {
			if n == subset {
				return
			}
		}
		defined = append(defined, r.names...)
	}
	v.errorf(key, p, "subset %q is not defined by DestinationRule %s/%s; defined subsets are %s",
		subset, rules[0].key.Namespace, rules[0].key.Name, strings.Join(defined, ", "))
}

// known reports whether host is in the registry, directly or under a
// wildcard ServiceEntry host.
func (v *validator) known(host string) bool {
	if v.registry[host] {
		return true
	}
	for h := range v.registry {
		if strings.HasPrefix(h, "*") && strings.HasSuffix(host, h[1:]) {
			return true
		}
	}
	return false
}

// rulesFor finds the DestinationRules for host: those naming it exactly,
// else those of the most specific wildcard host covering it
// (*.example.com covers api.example.com), as Istio chooses.
func (v *validator) rulesFor(host string) []ruleSubsets {
	if rules := v.subsets[host]; len(rules) > 0 {
		return rules
	}
	best := ""
	for h := range v.subsets {
		if strings.HasPrefix(h, "*") && strings.HasSuffix(host, h[1:]) && len(h) > len(best) {
			best = h
		}
	}
	if best == "" {
		return nil
	}
	return v.subsets[best]
}

// gatewayRefs checks that each referenced Gateway exists. "mesh" is the
// reserved name for the sidecars; a short name is in the VirtualService's
// namespace.
// exportTo checks spec.exportTo: ".", "*", "~" (alone), or namespace
// names.
func (v *validator) exportTo(key Key, list []string) {
	for i, e := range list {
		switch {
		case e == "~" && len(list) > 1:
			v.errorf(key, indexPath("spec.exportTo", i), `"~" exports to no namespace and cannot be listed with others`)
		case e == "." || e == "*" || e == "~":
		case !isDNSLabel(e):
			v.errorf(key, indexPath("spec.exportTo", i), `%q is not ".", "*", "~" or a namespace name`, e)
		}
	}
}

// isDNSLabel reports whether s is an RFC 1123 label, as Kubernetes
// namespace names are.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (v *validator) gatewayRefs(key Key, p string, refs []string) {
	for i, ref := range refs {
		if ref == "mesh" {
			continue
		}
		ns, name, found := strings.Cut(ref, "/")
		if !found {
			ns, name = key.Namespace, ref
		}
		if !v.gateways[Key{Kind: "Gateway", Namespace: ns, Name: name}] {
			v.errorf(key, indexPath(p, i), "%s", fmt.Sprintf("Gateway %s/%s not found; define it or use \"mesh\"", ns, name))
		}
	}
}
