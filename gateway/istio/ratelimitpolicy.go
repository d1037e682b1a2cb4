package istio

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WaygateGroup is the API group of Waygate's own resources.
const WaygateGroup = "waygate.dev"

// RateLimitPolicy is Waygate's resource for rate limits at the gateway
// (waygate.dev/v1alpha1): Istio configures Envoy's rate limit filters
// only through EnvoyFilter patches, which are too raw to validate. The
// translator turns a policy into local_ratelimit per-route configs and
// route rate_limits for the ratelimit filter, as those patches would.
type RateLimitPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              RateLimitPolicySpec `json:"spec"`
}

// RateLimitPolicySpec selects gateways and requests and lists the
// limits.
type RateLimitPolicySpec struct {
	// Selector picks gateway proxies by their labels, as a Gateway's
	// selector does; empty selects every proxy unless Gateways is set.
	Selector map[string]string `json:"selector,omitempty"`
	// Gateways limits the policy to proxies serving these Gateways
	// ("name" in the policy's namespace, or "namespace/name").
	Gateways []string `json:"gateways,omitempty"`
	// Hosts limits the policy to virtual hosts serving one of these
	// hosts ("*.example.com" wildcards allowed); empty means all.
	Hosts []string `json:"hosts,omitempty"`
	// Match limits the policy to requests whose path starts with
	// PathPrefix.
	Match *RateLimitMatch `json:"match,omitempty"`
	// RateLimitService is the host:port of the rate limit service
	// (waygate ratelimit-server) that global rules ask.
	RateLimitService string `json:"rateLimitService,omitempty"`
	// Domain is the rate limit service domain; "waygate" when empty.
	Domain string `json:"domain,omitempty"`
	// FailureModeDeny answers 500 when the service cannot be reached,
	// rather than letting requests through.
	FailureModeDeny bool `json:"failureModeDeny,omitempty"`
	// Timeout bounds a call to the service ("100ms"); Envoy's 20ms when
	// empty.
	Timeout string `json:"timeout,omitempty"`
	// Rules are the limits; a request counts against every rule that
	// applies to it.
	Rules []RateLimitRule `json:"rules"`
}

// RateLimitMatch selects requests.
type RateLimitMatch struct {
	PathPrefix string `json:"pathPrefix,omitempty"`
}

// RateLimitRule is one limit, counted per value of its key.
type RateLimitRule struct {
	// Name identifies the rule in descriptors and in the rate limit
	// service's config; the rule's index when empty.
	Name string `json:"name,omitempty"`
	// By is what requests are counted by: clientIP, header, path,
	// jwtClaim, or empty for one count shared by every request.
	By string `json:"by,omitempty"`
	// Header is the header counted by, for by: header.
	Header string `json:"header,omitempty"`
	// Claim is the JWT claim counted by, for by: jwtClaim; the JWT is
	// validated by a RequestAuthentication.
	Claim string `json:"claim,omitempty"`
	// Local is a token bucket in each gateway replica.
	Local *LocalLimit `json:"local,omitempty"`
	// Global is a limit all replicas share through the rate limit
	// service.
	Global *GlobalLimit `json:"global,omitempty"`
}

// LocalLimit is a token bucket: Requests per Per, refilled whole.
type LocalLimit struct {
	Requests uint32 `json:"requests"`
	// Per is a duration ("1m", "10s") or a unit (second, minute, hour,
	// day).
	Per string `json:"per"`
}

// GlobalLimit is Requests per Unit in the rate limit service.
type GlobalLimit struct {
	Requests uint32 `json:"requests"`
	// Per is second, minute, hour or day.
	Per string `json:"per"`
}

// waygateKinds are the kinds of the waygate.dev group, with the
// versions served.
var waygateKinds = map[string][]string{"RateLimitPolicy": {"v1alpha1"}}

// waygateObject decodes a resource of the waygate.dev group: plain Go
// types rather than protos, checked field by field against their JSON
// tags so an unknown field is reported with its path as for Istio kinds.
func (p *parser) waygateObject(m map[string]any, fl *fieldLines, key Key, meta metav1.ObjectMeta, metaErr error, version string, line int, at string, index int) {
	lines := fl.get
	versions, ok := waygateKinds[key.Kind]
	switch {
	case !ok:
		p.report(Finding{Severity: Error, Line: lineOr(lines(), "kind", line), Resource: key, Path: joinPath(at, "kind"),
			Message: fmt.Sprintf("unknown kind %q in API group %s; known kinds are RateLimitPolicy", key.Kind, WaygateGroup)})
		return
	case !slices.Contains(versions, version):
		p.report(Finding{Severity: Error, Line: lineOr(lines(), "apiVersion", line), Resource: key, Path: joinPath(at, "apiVersion"),
			Message: fmt.Sprintf("%s/%s is not served for %s; use %s/%s", WaygateGroup, version, key.Kind, WaygateGroup, versions[0])})
		return
	case metaErr != nil:
		p.report(Finding{Severity: Error, Line: lineOr(lines(), "metadata", line), Resource: key, Path: joinPath(at, "metadata"), Message: metaErr.Error()})
		return
	case meta.Name == "":
		p.report(Finding{Severity: Error, Line: lineOr(lines(), "metadata", line), Resource: key, Path: joinPath(at, "metadata.name"), Message: "required: every resource needs a name"})
		return
	}
	if prev, dup := p.cfg.Origins[key]; dup {
		p.report(Finding{Severity: Error, Line: line, Resource: key, Message: fmt.Sprintf("defined twice in this file: also at line %d; this one is ignored", prev.Line)})
		return
	}
	meta.Namespace = key.Namespace
	invalid := false
	for f := range m {
		if !slices.Contains(topLevelFields, f) {
			invalid = true
			p.report(Finding{Severity: Error, Line: lineOr(lines(), f, line), Resource: key, Path: f,
				Message: fmt.Sprintf("unknown field %q; valid fields are %s", f, strings.Join(topLevelFields, ", "))})
		}
	}
	r := &RateLimitPolicy{TypeMeta: metav1.TypeMeta{APIVersion: WaygateGroup + "/" + version, Kind: key.Kind}, ObjectMeta: meta}
	for _, pr := range checkJSONFields(m["spec"], reflect.TypeOf(r.Spec), "spec") {
		invalid = true
		p.report(Finding{Severity: Error, Line: lineOr(lines(), pr.path, line), Resource: key, Path: pr.path, Message: pr.msg})
	}
	if spec, ok := m["spec"]; ok && !invalid {
		raw, err := json.Marshal(spec)
		if err == nil {
			err = json.Unmarshal(raw, &r.Spec)
		}
		if err != nil {
			p.report(Finding{Severity: Error, Line: lineOr(lines(), "spec", line), Resource: key, Path: "spec", Message: err.Error()})
			return
		}
	}
	p.cfg.RateLimitPolicies = append(p.cfg.RateLimitPolicies, r)
	p.cfg.Origins[key] = Origin{File: p.file, Document: index, Line: line}
	p.cfg.lines[key] = fl
}

type fieldProblem struct{ path, msg string }

// checkJSONFields reports fields of v (a decoded YAML value) that type t
// has no JSON field for, and values of the wrong shape.
func checkJSONFields(v any, t reflect.Type, path string) []fieldProblem {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			if v == nil {
				return nil
			}
			return []fieldProblem{{path, fmt.Sprintf("expected a mapping, got %T", v)}}
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		var out []fieldProblem
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				out = append(out, fieldProblem{fieldPath(path, k), fmt.Sprintf("unknown field %q%s", k, suggestName(k, sortedKeys(fields)))})
				continue
			}
			out = append(out, checkJSONFields(m[k], ft, fieldPath(path, k))...)
		}
		return out
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			if v == nil {
				return nil
			}
			return []fieldProblem{{path, fmt.Sprintf("expected a list, got %T", v)}}
		}
		var out []fieldProblem
		for i, e := range l {
			out = append(out, checkJSONFields(e, t.Elem(), indexPath(path, i))...)
		}
		return out
	}
	return nil
}
