package rls

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Config is the parsed configuration of every domain.
type Config struct {
	domains map[string]*node
}

// fileDomain is one YAML document of envoyproxy/ratelimit's format.
type fileDomain struct {
	Domain      string           `yaml:"domain"`
	Descriptors []fileDescriptor `yaml:"descriptors"`
}

type fileDescriptor struct {
	Key            string           `yaml:"key"`
	Value          string           `yaml:"value"`
	RateLimit      *fileLimit       `yaml:"rate_limit"`
	Descriptors    []fileDescriptor `yaml:"descriptors"`
	ShadowMode     bool             `yaml:"shadow_mode"`
	DetailedMetric bool             `yaml:"detailed_metric"`
}

type fileLimit struct {
	Name            string `yaml:"name"`
	Unit            string `yaml:"unit"`
	RequestsPerUnit uint32 `yaml:"requests_per_unit"`
	UnitMultiplier  uint32 `yaml:"unit_multiplier"`
	Unlimited       bool   `yaml:"unlimited"`
	Replaces        []any  `yaml:"replaces"`
}

// node is one level of a domain's descriptor tree.
type node struct {
	children map[string]*node // by "key_value", or "key" for any value
	prefixes []prefixChild    // values ending in "*"
	limit    *limit
	shadow   bool
}

type prefixChild struct {
	key, prefix string
	n           *node
}

// limit is a compiled rate_limit.
type limit struct {
	name      string
	perUnit   uint32
	unit      rlsv3.RateLimitResponse_RateLimit_Unit
	window    time.Duration
	unlimited bool
	proto     *rlsv3.RateLimitResponse_RateLimit
}

var units = map[string]struct {
	unit rlsv3.RateLimitResponse_RateLimit_Unit
	d    time.Duration
}{
	"second": {rlsv3.RateLimitResponse_RateLimit_SECOND, time.Second},
	"minute": {rlsv3.RateLimitResponse_RateLimit_MINUTE, time.Minute},
	"hour":   {rlsv3.RateLimitResponse_RateLimit_HOUR, time.Hour},
	"day":    {rlsv3.RateLimitResponse_RateLimit_DAY, 24 * time.Hour},
	"week":   {rlsv3.RateLimitResponse_RateLimit_WEEK, 7 * 24 * time.Hour},
	"month":  {rlsv3.RateLimitResponse_RateLimit_MONTH, 30 * 24 * time.Hour},
	"year":   {rlsv3.RateLimitResponse_RateLimit_YEAR, 365 * 24 * time.Hour},
}

// LoadFiles reads and parses config files; each may hold several YAML
// documents, one per domain, and a domain may be defined once only.
func LoadFiles(paths ...string) (*Config, error) {
	cfg := &Config{domains: map[string]*node{}}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if err := cfg.Add(p, data); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Parse parses config text; name prefixes errors.
func Parse(name string, data []byte) (*Config, error) {
	cfg := &Config{domains: map[string]*node{}}
	if err := cfg.Add(name, data); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Add parses more config text into c (name prefixes errors); a domain
// already in c is an error.
func (c *Config) Add(name string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	for i := 0; ; i++ {
		var fd fileDomain
		err := dec.Decode(&fd)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		if fd.Domain == "" {
			if len(fd.Descriptors) == 0 {
				continue // an empty document
			}
			return fmt.Errorf("%s: document %d: domain: must not be empty", name, i+1)
		}
		if _, dup := c.domains[fd.Domain]; dup {
			return fmt.Errorf("%s: domain %q is defined twice", name, fd.Domain)
		}
		root, err := compileLevel(fd.Descriptors, "descriptors")
		if err != nil {
			return fmt.Errorf("%s: domain %q: %w", name, fd.Domain, err)
		}
		c.domains[fd.Domain] = root
	}
}

func compileLevel(ds []fileDescriptor, field string) (*node, error) {
	n := &node{children: map[string]*node{}}
	for i, d := range ds {
		path := fmt.Sprintf("%s[%d]", field, i)
		if d.Key == "" {
			return nil, fmt.Errorf("%s.key: must not be empty", path)
		}
		child, err := compileLevel(d.Descriptors, path+".descriptors")
		if err != nil {
			return nil, err
		}
		child.shadow = d.ShadowMode
		if d.RateLimit != nil {
			l, err := compileLimit(d.RateLimit, path+".rate_limit")
			if err != nil {
				return nil, err
			}
			child.limit = l
		}
		if prefix, ok := strings.CutSuffix(d.Value, "*"); ok {
			n.prefixes = append(n.prefixes, prefixChild{key: d.Key, prefix: prefix, n: child})
			continue
		}
		k := d.Key
		if d.Value != "" {
			k += "_" + d.Value
		}
		if _, dup := n.children[k]; dup {
			return nil, fmt.Errorf("%s: duplicate descriptor %q", path, k)
		}
		n.children[k] = child
	}
	return n, nil
}

func compileLimit(fl *fileLimit, path string) (*limit, error) {
	if fl.Unlimited {
		return &limit{name: fl.Name, unlimited: true}, nil
	}
	u, ok := units[strings.ToLower(fl.Unit)]
	if !ok {
		return nil, fmt.Errorf("%s.unit: %q is not one of second, minute, hour, day, week, month, year", path, fl.Unit)
	}
	if len(fl.Replaces) > 0 {
		return nil, fmt.Errorf("%s.replaces: not supported", path)
	}
	mult := max(fl.UnitMultiplier, 1)
	l := &limit{name: fl.Name, perUnit: fl.RequestsPerUnit, unit: u.unit, window: u.d * time.Duration(mult)}
	l.proto = &rlsv3.RateLimitResponse_RateLimit{Name: fl.Name, RequestsPerUnit: fl.RequestsPerUnit, Unit: u.unit}
	if mult > 1 {
		l.proto.UnitMultiplier = wrapperspb.UInt32(mult)
	}
	return l, nil
}

// entry is one key/value pair of a request descriptor.
type entry struct{ key, value string }

// find walks the tree with the request's entries: at each level the
// exact key_value wins over a value prefix, which wins over the bare key
// (any value). The limit is the one of the node reached with the last
// entry; nil when the walk leaves the tree or that node has none.
func (c *Config) find(domain string, entries []entry) (*limit, bool) {
	n := c.domains[domain]
	if n == nil {
		return nil, false
	}
	for _, e := range entries {
		next := n.children[e.key+"_"+e.value]
		if next == nil {
			for _, p := range n.prefixes {
				if p.key == e.key && strings.HasPrefix(e.value, p.prefix) {
					next = p.n
					break
				}
			}
		}
		if next == nil {
			next = n.children[e.key]
		}
		if next == nil {
			return nil, false
		}
		n = next
	}
	return n.limit, n.shadow
}
