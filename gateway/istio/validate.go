package istio

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	"istio.io/api/networking/v1alpha3"
)

// RootNamespace is Istio's default root namespace: a policy there without
// a selector applies to the whole mesh.
const RootNamespace = "istio-system"

// Validate runs the semantic checks that a schema cannot express, the
// ones istioctl analyze makes: references between resources (gateways,
// subsets), conflicts (two resources claiming the same host, two
// mesh-wide policies), required fields, and values out of range. Every
// finding names the resource and the field path, and the file and line
// when the resource came from a file.
func Validate(cfg *Config) []Finding {
	v := &validator{cfg: cfg}
	v.index()
	for _, r := range cfg.Gateways {
		v.gateway(r.Namespace, r.Name, r.Spec.GetServers(), r.Spec.GetSelector())
	}
	for _, r := range cfg.VirtualServices {
		v.virtualService(keyOf("VirtualService", r), &r.Spec)
	}
	v.virtualServiceHosts()
	for _, r := range cfg.DestinationRules {
		v.destinationRule(keyOf("DestinationRule", r), &r.Spec)
	}
	for _, r := range cfg.ServiceEntries {
		v.serviceEntry(keyOf("ServiceEntry", r), &r.Spec)
	}
	for _, r := range cfg.WorkloadEntries {
		v.workloadEntry(keyOf("WorkloadEntry", r), &r.Spec)
	}
	for _, r := range cfg.PeerAuthentications {
		v.peerAuthentication(keyOf("PeerAuthentication", r), &r.Spec)
	}
	for _, r := range cfg.AuthorizationPolicies {
		v.authorizationPolicy(keyOf("AuthorizationPolicy", r), &r.Spec)
	}
	for _, r := range cfg.RequestAuthentications {
		v.requestAuthentication(keyOf("RequestAuthentication", r), &r.Spec)
	}
	for _, r := range cfg.WasmPlugins {
		v.wasmPlugin(keyOf("WasmPlugin", r), &r.Spec)
	}
	for _, r := range cfg.EnvoyFilters {
		v.envoyFilter(keyOf("EnvoyFilter", r), &r.Spec)
	}
	for _, r := range cfg.RateLimitPolicies {
		v.rateLimitPolicy(keyOf("RateLimitPolicy", r), &r.Spec)
	}
	return v.findings
}

type validator struct {
	cfg      *Config
	findings []Finding
	// gateways holds the keys of the Gateways, for references.
	gateways map[Key]bool
	// subsets maps a host FQDN to the DestinationRules defining it and
	// their subset names.
	subsets map[string][]ruleSubsets
	// registry holds the hosts of Services and ServiceEntries; nil when
	// the source has no service registry (a directory), where a
	// destination cannot be checked.
	registry map[string]bool
	// claimed remembers the first resource claiming a unique thing (a
	// gateway port and host, a DestinationRule host, a mesh-wide policy),
	// to name it when a second one claims it too.
	claimed map[string]claim
}

type ruleSubsets struct {
	key   Key
	names []string
}

type claim struct {
	key  Key
	path string
}

func (v *validator) index() {
	v.gateways = map[Key]bool{}
	v.subsets = map[string][]ruleSubsets{}
	v.claimed = map[string]claim{}
	for _, r := range v.cfg.Gateways {
		v.gateways[keyOf("Gateway", r)] = true
	}
	if len(v.cfg.Services) > 0 {
		v.registry = map[string]bool{}
		for _, s := range v.cfg.Services {
			v.registry[s.Hostname] = true
		}
		for _, r := range v.cfg.ServiceEntries {
			for _, h := range r.Spec.GetHosts() {
				v.registry[FQDN(h, keyOf("ServiceEntry", r).Namespace)] = true
			}
		}
	}
	for _, r := range v.cfg.DestinationRules {
		k := keyOf("DestinationRule", r)
		rs := ruleSubsets{key: k}
		for _, s := range r.Spec.GetSubsets() {
			rs.names = append(rs.names, s.GetName())
		}
		host := FQDN(r.Spec.GetHost(), k.Namespace)
		v.subsets[host] = append(v.subsets[host], rs)
	}
}

func (v *validator) errorf(key Key, path, format string, args ...any) {
	v.add(Error, key, path, fmt.Sprintf(format, args...))
}

func (v *validator) warnf(key Key, path, format string, args ...any) {
	v.add(Warning, key, path, fmt.Sprintf(format, args...))
}

func (v *validator) add(sev Severity, key Key, path, msg string) {
	origin := v.cfg.Origins[key]
	v.findings = append(v.findings, Finding{
		Severity: sev, File: origin.File, Line: v.line(key, path), Resource: key, Path: path, Message: msg,
	})
}

// line finds the line of path, or of its nearest parent that was written
// in the file (a missing field is reported on its parent's line).
func (v *validator) line(key Key, path string) int {
	lines := v.cfg.lines[key].get()
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := lines[p]; ok {
			return l
		}
	}
	return v.cfg.Origins[key].Line
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// claim records that key owns what at path, and reports whether another
// resource owned it first (which it returns).
func (v *validator) claim(what string, key Key, path string) (claim, bool) {
	if prev, ok := v.claimed[what]; ok {
		return prev, true
	}
	v.claimed[what] = claim{key: key, path: path}
	return claim{}, false
}

// stringMatch checks the regex of a StringMatch: Envoy compiles it with
// RE2, and Go's regexp implements the same syntax, so a pattern Go
// rejects would be rejected by Envoy too (a NACK far from its source).
func (v *validator) stringMatch(key Key, path string, m *v1alpha3.StringMatch) {
	if m == nil {
		return
	}
	if re, ok := m.GetMatchType().(*v1alpha3.StringMatch_Regex); ok {
		v.regex(key, path+".regex", re.Regex)
	}
}

func (v *validator) regex(key Key, path, re string) {
	if _, err := regexp.Compile(re); err != nil {
		v.errorf(key, path, "invalid RE2 regular expression %q: %v", re, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
}

func (v *validator) stringMatches(key Key, path string, ms map[string]*v1alpha3.StringMatch) {
	for _, name := range sortedKeys(ms) {
		v.stringMatch(key, fieldPath(path, name), ms[name])
	}
}

func (v *validator) nonNegative(key Key, path string, d *durationpb.Duration) {
	if d != nil && (d.GetSeconds() < 0 || d.GetNanos() < 0) {
		v.errorf(key, path, "must not be negative, got %s", d.AsDuration())
	}
}

func (v *validator) percent(key Key, path string, p *v1alpha3.Percent) {
	if p != nil && (p.GetValue() < 0 || p.GetValue() > 100) {
		v.errorf(key, path+".value", "percentage %g is out of range 0..100", p.GetValue())
	}
}

// port checks a port number that must be set (1..65535).
func (v *validator) port(key Key, path string, n uint32) {
	if n == 0 || n > 65535 {
		v.errorf(key, path, "port %d is out of range 1..65535", n)
	}
}

// optionalPort checks a port number where 0 means "not set".
func (v *validator) optionalPort(key Key, path string, n uint32) {
	if n > 65535 {
		v.errorf(key, path, "port %d is out of range 1..65535", n)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
