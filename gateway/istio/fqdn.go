package istio

import "strings"

// DomainSuffix is the cluster's DNS suffix that short names are completed
// with: Kubernetes Services under the default cluster domain.
const DomainSuffix = "svc.cluster.local"

// FQDN completes a short host name the way Istio does: a name without a
// dot is a Service in the resource's namespace ("reviews" in "default" is
// reviews.default.svc.cluster.local); a name with a dot is already a
// domain and is kept, as are wildcards ("*", "*.example.com").
// See https://istio.io/latest/docs/reference/config/networking/virtual-service/#VirtualService
func FQDN(host, namespace string) string {
	if host == "" || strings.Contains(host, ".") || strings.HasPrefix(host, "*") {
		return host
	}
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return host + "." + namespace + "." + DomainSuffix
}
