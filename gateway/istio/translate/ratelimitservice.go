package translate

import (
	"bytes"
	"cmp"
	"slices"

	yaml "go.yaml.in/yaml/v3"

	"github.com/waygate/waygate/gateway/istio"
)

// rlsDescriptor is a descriptor of envoyproxy/ratelimit's config format
// (https://github.com/envoyproxy/ratelimit#configuration), which
// `waygate ratelimit-server` reads.
type rlsDescriptor struct {
	Key         string          `yaml:"key"`
	Value       string          `yaml:"value,omitempty"`
	RateLimit   *rlsLimit       `yaml:"rate_limit,omitempty"`
	Descriptors []rlsDescriptor `yaml:"descriptors,omitempty"`
}

type rlsLimit struct {
	Unit            string `yaml:"unit"`
	RequestsPerUnit uint32 `yaml:"requests_per_unit"`
}

type rlsDomain struct {
	Domain      string          `yaml:"domain"`
	Descriptors []rlsDescriptor `yaml:"descriptors"`
}

// RateLimitServiceConfig is the rate limit service configuration that
// matches the descriptors the global rules of cfg's RateLimitPolicies
// send: one YAML document per domain, one descriptor tree per rule
// (waygate_rule, then path_prefix, then the key with any value). Every
// gateway and every service replica derive the same names from the same
// policies, so they agree without a second file to keep in step.
func RateLimitServiceConfig(cfg *istio.Config) []byte {
	byDomain := map[string][]rlsDescriptor{}
	ps := slices.Clone(cfg.RateLimitPolicies)
	slices.SortFunc(ps, func(a, b *istio.RateLimitPolicy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, p := range ps {
		dom := cmp.Or(p.Spec.Domain, defaultRateLimitDom)
		for i := range p.Spec.Rules {
			r := &p.Spec.Rules[i]
			if r.Global == nil {
				continue
			}
			unit, err := r.Global.Unit()
			if err != nil {
				continue // reported by validation
			}
			entries := ruleEntries(p, i)
			leaf := rlsDescriptor{Key: entries[len(entries)-1][0], Value: entries[len(entries)-1][1],
				RateLimit: &rlsLimit{Unit: unit, RequestsPerUnit: r.Global.Requests}}
			for j := len(entries) - 2; j >= 0; j-- {
				leaf = rlsDescriptor{Key: entries[j][0], Value: entries[j][1], Descriptors: []rlsDescriptor{leaf}}
			}
			byDomain[dom] = append(byDomain[dom], leaf)
		}
	}
	doms := make([]string, 0, len(byDomain))
	for d := range byDomain {
		doms = append(doms, d)
	}
	slices.Sort(doms)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range doms {
		_ = enc.Encode(rlsDomain{Domain: d, Descriptors: byDomain[d]})
	}
	_ = enc.Close()
	return buf.Bytes()
}
