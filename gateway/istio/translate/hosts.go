package translate

import (
	"strings"

	"github.com/waygate/waygate/gateway/istio"
)

// fqdn completes a short service name in namespace, as istiod resolves
// VirtualService and DestinationRule hosts
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#Destination):
// "reviews" in "default" is "reviews.default.svc.cluster.local"; names
// with a dot and wildcards stay as written.
func (t *translator) fqdn(host, namespace string) string {
	if t.proxy.DomainSuffix == "cluster.local" {
		return istio.FQDN(host, namespace)
	}
	if host == "" || strings.HasPrefix(host, "*") || strings.Contains(host, ".") {
		return host
	}
	return host + "." + namespace + ".svc." + t.proxy.DomainSuffix
}

// hostMatches reports whether host a, possibly a wildcard such as
// "*.example.com" or "*", covers host b. It follows Istio's host.Name
// Matches: either side may be the wildcard.
func hostMatches(a, b string) bool {
	return hostSubsetOf(a, b) || hostSubsetOf(b, a)
}

// hostSubsetOf reports whether every name a matches is matched by b.
func hostSubsetOf(a, b string) bool {
	if a == b || b == "*" {
		return true
	}
	if strings.HasPrefix(b, "*") {
		suffix := b[1:]
		if strings.HasPrefix(a, "*") {
			return strings.HasSuffix(a[1:], suffix)
		}
		return strings.HasSuffix(a, suffix)
	}
	return false
}

// intersectHosts returns, for every pair of hosts where one covers the
// other, the narrower of the two, in the order of server hosts: the hosts
// a gateway server and a VirtualService have in common, as Istio's
// host.Names Intersection computes them.
func intersectHosts(server, vs []string) []string {
	var out []string
	add := func(h string) {
		for _, o := range out {
			if o == h {
				return
			}
		}
		out = append(out, h)
	}
	for _, s := range server {
		for _, v := range vs {
			switch {
			case hostSubsetOf(s, v):
				add(s)
			case hostSubsetOf(v, s):
				add(v)
			}
		}
	}
	return out
}

// serverHostsFor returns the hosts of a Gateway server that are visible to
// resources in namespace: "ns/host" applies to namespace ns only, "*/host"
// and "host" to every namespace, "./host" to the Gateway's own namespace
// (https://istio.io/latest/docs/reference/config/networking/gateway/#Server).
func serverHostsFor(hosts []string, gatewayNamespace, namespace string) []string {
	var out []string
	for _, h := range hosts {
		ns, name, ok := strings.Cut(h, "/")
		if !ok {
			out = append(out, strings.ToLower(h))
			continue
		}
		if ns == "." {
			ns = gatewayNamespace
		}
		if ns == "*" || ns == namespace {
			out = append(out, strings.ToLower(name))
		}
	}
	return out
}

// stripNamespace drops the "ns/" part of a Gateway server host.
func stripNamespace(h string) string {
	if _, name, ok := strings.Cut(h, "/"); ok {
		return strings.ToLower(name)
	}
	return strings.ToLower(h)
}
