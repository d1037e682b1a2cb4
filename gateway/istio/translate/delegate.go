package translate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

// VirtualService delegation
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#Delegate):
// a VirtualService without hosts is a delegate, translated only through
// the root VirtualService rules that name it. Each http rule of the
// delegate becomes a rule of the root in place of the delegating rule,
// its matches narrowed by the root rule's, and what it leaves unset
// (rewrite, timeout, retries, fault, mirror, CORS, headers) taken from
// the root rule. As istiod does, delegation is one level deep, and a
// delegate rule whose match is not within the root rule's is left out.

// isDelegate reports whether a VirtualService is a delegate.
func isDelegate(spec *v1alpha3.VirtualService) bool { return len(spec.GetHosts()) == 0 }

// resolveDelegates replaces the delegating rules of each root
// VirtualService with the delegates' rules, and returns the roots only.
func (t *translator) resolveDelegates(all []*virtualService) []*virtualService {
	delegates := map[istio.Key]*virtualService{}
	var roots []*virtualService
	for _, vs := range all {
		if isDelegate(vs.spec) {
			delegates[vs.key] = vs
			continue
		}
		roots = append(roots, vs)
	}
	for _, root := range roots {
		if !slices.ContainsFunc(root.spec.GetHttp(), func(r *v1alpha3.HTTPRoute) bool { return r.GetDelegate() != nil }) {
			continue
		}
		spec := proto.Clone(root.spec).(*v1alpha3.VirtualService)
		spec.Http = nil
		root.fields = nil
		for i, rule := range root.spec.GetHttp() {
			field := fmt.Sprintf("spec.http[%d]", i)
			d := rule.GetDelegate()
			if d == nil {
				spec.Http = append(spec.Http, rule)
				root.fields = append(root.fields, field)
				continue
			}
			ns := d.GetNamespace()
			if ns == "" {
				ns = root.key.Namespace
			}
			child, ok := delegates[istio.Key{Kind: "VirtualService", Namespace: ns, Name: d.GetName()}]
			if ok && !exportedTo(child.spec.GetExportTo(), ns, root.key.Namespace) {
				t.warn(root.key, field+".delegate", "the delegate VirtualService %s/%s is not exported to namespace %s (exportTo); the rule is left out", ns, d.GetName(), root.key.Namespace)
				continue
			}
			if !ok {
				t.warn(root.key, field+".delegate", "no delegate VirtualService %s/%s (one without hosts) exists; the rule is left out", ns, d.GetName())
				continue
			}
			for j, cr := range child.spec.GetHttp() {
				cfield := fmt.Sprintf("%s.delegate(%s/%s).http[%d]", field, ns, d.GetName(), j)
				if cr.GetDelegate() != nil {
					t.warn(root.key, cfield+".delegate", "a delegate cannot delegate further; the rule is left out")
					continue
				}
				merged, ok := mergeDelegateRule(rule, t.resolvedHosts(cr, ns))
				if !ok {
					t.warn(root.key, cfield+".match", "not within the match of the delegating rule; the rule is left out")
					continue
				}
				spec.Http = append(spec.Http, merged)
				root.fields = append(root.fields, cfield)
			}
		}
		root.spec = spec
	}
	return roots
}

// resolvedHosts is a copy of a delegate rule whose destination hosts
// are FQDNs: a short name means a service in the delegate's namespace,
// not the root's.
func (t *translator) resolvedHosts(r *v1alpha3.HTTPRoute, namespace string) *v1alpha3.HTTPRoute {
	r = proto.Clone(r).(*v1alpha3.HTTPRoute)
	for _, d := range r.GetRoute() {
		if d.GetDestination() != nil {
			d.Destination.Host = t.fqdn(d.Destination.Host, namespace)
		}
	}
	if r.Mirror != nil {
		r.Mirror.Host = t.fqdn(r.Mirror.Host, namespace)
	}
	for _, m := range r.GetMirrors() {
		if m.GetDestination() != nil {
			m.Destination.Host = t.fqdn(m.Destination.Host, namespace)
		}
	}
	return r
}

// mergeDelegateRule narrows the delegate rule d by the root rule's
// matches and fills what d leaves unset from the root rule. ok is false
// when some match of d is within none of the root's.
func mergeDelegateRule(root, d *v1alpha3.HTTPRoute) (*v1alpha3.HTTPRoute, bool) {
	matches, ok := mergeMatches(root.GetMatch(), d.GetMatch())
	if !ok {
		return nil, false
	}
	d.Match = matches
	switch {
	case d.Name == "":
		d.Name = root.Name
	case root.Name != "":
		d.Name = root.Name + "-" + d.Name
	}
	if d.Rewrite == nil {
		d.Rewrite = root.Rewrite
	}
	if d.Timeout == nil {
		d.Timeout = root.Timeout
	}
	if d.Retries == nil {
		d.Retries = root.Retries
	}
	if d.Fault == nil {
		d.Fault = root.Fault
	}
	if d.Mirror == nil {
		d.Mirror = root.Mirror
	}
	if d.MirrorPercentage == nil {
		d.MirrorPercentage = root.MirrorPercentage
	}
	if d.MirrorPercent == nil { //nolint:staticcheck // deprecated but accepted.
		d.MirrorPercent = root.MirrorPercent
	}
	if d.Mirrors == nil {
		d.Mirrors = root.Mirrors
	}
	if d.CorsPolicy == nil {
		d.CorsPolicy = root.CorsPolicy
	}
	if d.Headers == nil {
		d.Headers = root.Headers
	}
	return d, true
}

// mergeMatches pairs every delegate match with each root match it lies
// within. With no matches on one side, the other side's stand.
func mergeMatches(root, d []*v1alpha3.HTTPMatchRequest) ([]*v1alpha3.HTTPMatchRequest, bool) {
	if len(root) == 0 {
		return d, true
	}
	if len(d) == 0 {
		return root, true
	}
	var out []*v1alpha3.HTTPMatchRequest
	for _, dm := range d {
		found := false
		for _, rm := range root {
			if !matchWithin(rm, dm) {
				continue
			}
			out = append(out, mergeMatch(rm, dm))
			found = true
		}
		if !found {
			return nil, false
		}
	}
	return out, true
}

// mergeMatch is the delegate match dm with what it leaves unset taken
// from the root match rm; header, query and source-label conditions of
// both apply.
func mergeMatch(rm, dm *v1alpha3.HTTPMatchRequest) *v1alpha3.HTTPMatchRequest {
	m := proto.Clone(dm).(*v1alpha3.HTTPMatchRequest)
	switch {
	case m.Name == "":
		m.Name = rm.Name
	case rm.Name != "":
		m.Name = rm.Name + "-" + m.Name
	}
	if m.Uri == nil {
		m.Uri = rm.Uri
	}
	if m.Scheme == nil {
		m.Scheme = rm.Scheme
	}
	if m.Method == nil {
		m.Method = rm.Method
	}
	if m.Authority == nil {
		m.Authority = rm.Authority
	}
	m.Headers = union(rm.Headers, dm.Headers)
	m.WithoutHeaders = union(rm.WithoutHeaders, dm.WithoutHeaders)
	m.QueryParams = union(rm.QueryParams, dm.QueryParams)
	m.SourceLabels = union(rm.SourceLabels, dm.SourceLabels)
	if m.Port == 0 {
		m.Port = rm.Port
	}
	if m.SourceNamespace == "" {
		m.SourceNamespace = rm.SourceNamespace
	}
	if len(m.Gateways) == 0 {
		m.Gateways = rm.Gateways
	}
	return m
}

// union is a's entries overridden by b's; nil when both are empty.
func union[V any](a, b map[string]V) map[string]V {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make(map[string]V, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// matchWithin reports whether the delegate match dm selects only
// requests the root match rm selects, as istiod's conflict check: each
// of uri, scheme, method, authority, the headers and query parameters
// dm names must be narrower than or equal to the root's, and the port,
// case handling, source namespace, source labels and gateways agree.
func matchWithin(rm, dm *v1alpha3.HTTPMatchRequest) bool {
	pairs := [][2]*v1alpha3.StringMatch{{rm.Uri, dm.Uri}, {rm.Scheme, dm.Scheme}, {rm.Method, dm.Method}, {rm.Authority, dm.Authority}}
	for k, v := range dm.Headers {
		pairs = append(pairs, [2]*v1alpha3.StringMatch{rm.Headers[k], v})
	}
	for k, v := range dm.WithoutHeaders {
		pairs = append(pairs, [2]*v1alpha3.StringMatch{rm.WithoutHeaders[k], v})
	}
	for k, v := range dm.QueryParams {
		pairs = append(pairs, [2]*v1alpha3.StringMatch{rm.QueryParams[k], v})
	}
	for _, p := range pairs {
		if !stringMatchWithin(p[0], p[1]) {
			return false
		}
	}
	if rm.IgnoreUriCase != dm.IgnoreUriCase {
		return false
	}
	if rm.Port != 0 && dm.Port != 0 && rm.Port != dm.Port {
		return false
	}
	if rm.SourceNamespace != "" && dm.SourceNamespace != rm.SourceNamespace {
		return false
	}
	for k, v := range dm.SourceLabels {
		if rv, ok := rm.SourceLabels[k]; ok && rv != v {
			return false
		}
	}
	if len(rm.Gateways) > 0 && len(dm.Gateways) > 0 {
		for _, g := range dm.Gateways {
			if !slices.Contains(rm.Gateways, g) {
				return false
			}
		}
	}
	return true
}

// stringMatchWithin reports whether the delegate's condition d is the
// root's r or narrower. Either being unset is no conflict; a regex is
// comparable with nothing but an unset side.
func stringMatchWithin(r, d *v1alpha3.StringMatch) bool {
	if r == nil || d == nil {
		return true
	}
	if r.GetRegex() != "" || d.GetRegex() != "" {
		return false
	}
	if exact := r.GetExact(); exact != "" {
		return d.GetPrefix() == "" && d.GetExact() == exact
	}
	if prefix := r.GetPrefix(); prefix != "" {
		switch {
		case d.GetPrefix() != "":
			return strings.HasPrefix(d.GetPrefix(), prefix)
		case d.GetExact() != "":
			return strings.HasPrefix(d.GetExact(), prefix)
		}
	}
	return false
}
