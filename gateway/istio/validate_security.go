package istio

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"istio.io/api/extensions/v1alpha1"
	"istio.io/api/security/v1beta1"
)

// peerAuthentication checks that at most one policy applies mesh-wide
// (root namespace, no selector) and one namespace-wide per namespace:
// Istio would pick the oldest, an order a directory of files does not
// have. See https://istio.io/latest/docs/reference/config/security/peer_authentication/
func (v *validator) peerAuthentication(key Key, pa *v1beta1.PeerAuthentication) {
	if len(pa.GetSelector().GetMatchLabels()) == 0 {
		scope, what := "namespace-wide", "namespace "+key.Namespace
		if key.Namespace == RootNamespace {
			scope, what = "mesh-wide", "the mesh"
		}
		if prev, dup := v.claim("peerauthentication "+key.Namespace, key, "spec"); dup {
			v.errorf(key, "spec.selector", "conflicts with PeerAuthentication %s/%s: only one %s policy (no selector) may apply to %s",
				prev.key.Namespace, prev.key.Name, scope, what)
		}
		if len(pa.GetPortLevelMtls()) > 0 {
			v.errorf(key, "spec.portLevelMtls", "requires a selector: port-level mTLS applies to selected workloads only")
		}
	}
	for port := range pa.GetPortLevelMtls() {
		v.port(key, fieldPath("spec.portLevelMtls", strconv.FormatUint(uint64(port), 10)), port)
	}
}

// authorizationPolicy checks that CUSTOM and only CUSTOM names an
// external authorizer. See https://istio.io/latest/docs/reference/config/security/authorization-policy/
func (v *validator) authorizationPolicy(key Key, ap *v1beta1.AuthorizationPolicy) {
	if ap.GetAction() == v1beta1.AuthorizationPolicy_CUSTOM {
		if ap.GetProvider().GetName() == "" {
			v.errorf(key, "spec.provider.name", "required when action is CUSTOM: the extension provider (meshConfig.extensionProviders) to call")
		}
	} else if ap.GetProvider() != nil {
		v.errorf(key, "spec.provider", "only allowed with action CUSTOM, got action %s", ap.GetAction())
	}
	if ap.GetAction() == v1beta1.AuthorizationPolicy_DENY && len(ap.GetRules()) == 0 {
		v.warnf(key, "spec.rules", "a DENY policy without rules matches nothing; to deny everything, add an empty rule ({})")
	}
	for i, r := range ap.GetRules() {
		for j, to := range r.GetTo() {
			op := to.GetOperation()
			p := indexPath(indexPath("spec.rules", i)+".to", j) + ".operation"
			for k, pt := range op.GetPorts() {
				v.portString(key, indexPath(p+".ports", k), pt)
			}
			for k, pt := range op.GetNotPorts() {
				v.portString(key, indexPath(p+".notPorts", k), pt)
			}
		}
	}
}

func (v *validator) portString(key Key, p, s string) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || n > 65535 {
		v.errorf(key, p, "port %q must be a number in 1..65535", s)
	}
}

func (v *validator) requestAuthentication(key Key, ra *v1beta1.RequestAuthentication) {
	issuers := map[string]bool{}
	for i, r := range ra.GetJwtRules() {
		p := indexPath("spec.jwtRules", i)
		if r.GetIssuer() == "" {
			v.errorf(key, p+".issuer", "required: the iss claim tokens must carry")
		} else if issuers[r.GetIssuer()] {
			v.errorf(key, p+".issuer", "issuer %q has two rules", r.GetIssuer())
		}
		issuers[r.GetIssuer()] = true
		if r.GetJwksUri() != "" && r.GetJwks() != "" {
			v.errorf(key, p+".jwks", "set jwks or jwksUri, not both")
		}
		if u := r.GetJwksUri(); u != "" {
			parsed, err := url.Parse(u)
			if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
				v.errorf(key, p+".jwksUri", "%q is not an http or https URL", u)
			}
		}
		v.nonNegative(key, p+".timeout", r.GetTimeout())
	}
}

var sha256Hex = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// wasmPlugin checks where the module comes from: a file, an HTTP(S) URL,
// or an OCI image (the default when there is no scheme).
func (v *validator) wasmPlugin(key Key, wp *v1alpha1.WasmPlugin) {
	u := wp.GetUrl()
	if u == "" {
		v.errorf(key, "spec.url", "required: file://, http(s):// or oci:// location of the module")
		return
	}
	if sum := wp.GetSha256(); sum != "" && !sha256Hex.MatchString(sum) {
		v.errorf(key, "spec.sha256", "%q is not a SHA-256 digest: 64 hexadecimal digits", sum)
	}
	if scheme, _, found := strings.Cut(u, "://"); found {
		switch scheme {
		case "file", "http", "https", "oci":
		default:
			v.errorf(key, "spec.url", "unsupported scheme %q; use file, http, https or oci", scheme)
		}
	}
}
