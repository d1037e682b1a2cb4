package istio

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// rateLimitUnits are the units a limit may be counted per, as the rate
// limit service knows them.
var rateLimitUnits = map[string]time.Duration{
	"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour,
}

// Interval is the refill interval of a local limit: Per as a unit name
// or a Go duration.
func (l *LocalLimit) Interval() (time.Duration, error) {
	if d, ok := rateLimitUnits[strings.ToLower(l.Per)]; ok {
		return d, nil
	}
	d, err := time.ParseDuration(l.Per)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a unit (second, minute, hour, day) nor a duration such as 30s", l.Per)
	}
	if d < 50*time.Millisecond {
		return 0, fmt.Errorf("%v is below the 50ms minimum of a token bucket", d)
	}
	return d, nil
}

// Unit is the rate limit service unit of a global limit.
func (g *GlobalLimit) Unit() (string, error) {
	u := strings.ToLower(g.Per)
	if _, ok := rateLimitUnits[u]; !ok {
		return "", fmt.Errorf("%q is not one of second, minute, hour, day", g.Per)
	}
	return u, nil
}

// ID names rule i of the policy in descriptors: the rule's name, or its
// index.
func (r *RateLimitRule) ID(i int) string {
	if r.Name != "" {
		return r.Name
	}
	return strconv.Itoa(i)
}

// rateLimitBy are the keys a rule may count by.
var rateLimitBy = []string{"clientIP", "header", "path", "jwtClaim"}

func (v *validator) rateLimitPolicy(key Key, s *RateLimitPolicySpec) {
	for i, g := range s.Gateways {
		path := fmt.Sprintf("spec.gateways[%d]", i)
		ns, name, found := strings.Cut(g, "/")
		if !found {
			ns, name = key.Namespace, g
		}
		if name == "" || ns == "" {
			v.errorf(key, path, "%q: want name or namespace/name of a Gateway", g)
			continue
		}
		if !v.gateways[Key{Kind: "Gateway", Namespace: ns, Name: name}] {
			v.warnf(key, path, "no Gateway %s/%s: the policy applies to no proxy through it", ns, name)
		}
	}
	for i, h := range s.Hosts {
		if h == "" || strings.Contains(h, "/") || strings.Count(h, "*") > 1 || strings.Contains(h, "*") && h != "*" && !strings.HasPrefix(h, "*.") {
			v.errorf(key, fmt.Sprintf("spec.hosts[%d]", i), "%q: want a host name, a *.suffix wildcard or *", h)
		}
	}
	if m := s.Match; m != nil && m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
		v.errorf(key, "spec.match.pathPrefix", "%q must start with /", m.PathPrefix)
	}
	if len(s.Rules) == 0 {
		v.errorf(key, "spec.rules", "required: a policy needs at least one rule")
	}
	global := false
	names := map[string]int{}
	for i := range s.Rules {
		r := &s.Rules[i]
		path := fmt.Sprintf("spec.rules[%d]", i)
		if prev, dup := names[r.ID(i)]; dup {
			v.errorf(key, path+".name", "%q is also the name of rules[%d]; rule names must be unique", r.ID(i), prev)
		}
		names[r.ID(i)] = i
		switch r.By {
		case "", "clientIP", "path":
		case "header":
			if r.Header == "" {
				v.errorf(key, path+".header", "required when by is header")
			}
		case "jwtClaim":
			if r.Claim == "" {
				v.errorf(key, path+".claim", "required when by is jwtClaim")
			}
		default:
			v.errorf(key, path+".by", "%q is not one of %s (or empty for one count shared by every request)", r.By, strings.Join(rateLimitBy, ", "))
		}
		if r.Header != "" && r.By != "header" {
			v.warnf(key, path+".header", "ignored unless by is header")
		}
		if r.Claim != "" && r.By != "jwtClaim" {
			v.warnf(key, path+".claim", "ignored unless by is jwtClaim")
		}
		if (r.Local == nil) == (r.Global == nil) {
			v.errorf(key, path, "exactly one of local and global is required")
			continue
		}
		if l := r.Local; l != nil {
			if l.Requests == 0 {
				v.errorf(key, path+".local.requests", "required: must be at least 1")
			}
			if _, err := l.Interval(); err != nil {
				v.errorf(key, path+".local.per", "%v", err)
			}
		}
		if g := r.Global; g != nil {
			global = true
			if g.Requests == 0 {
				v.errorf(key, path+".global.requests", "required: must be at least 1")
			}
			if _, err := g.Unit(); err != nil {
				v.errorf(key, path+".global.per", "%v", err)
			}
		}
	}
	if s.Timeout != "" {
		if d, err := time.ParseDuration(s.Timeout); err != nil || d <= 0 {
			v.errorf(key, "spec.timeout", "%q: want a positive duration such as 100ms", s.Timeout)
		}
	}
	switch {
	case global && s.RateLimitService == "":
		v.errorf(key, "spec.rateLimitService", "required by global rules: the host:port of the rate limit service (waygate ratelimit-server)")
	case s.RateLimitService != "":
		host, port, err := net.SplitHostPort(s.RateLimitService)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || n == 0 {
			v.errorf(key, "spec.rateLimitService", "%q: want host:port", s.RateLimitService)
		}
	}
}
