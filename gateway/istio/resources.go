package istio

// object is what every client-go resource type offers through its
// embedded ObjectMeta; it lets one generic helper serve every kind.
type object interface {
	GetName() string
	GetNamespace() string
}

func keyOf(kind string, o object) Key {
	ns := o.GetNamespace()
	if ns == "" {
		ns = DefaultNamespace
	}
	return Key{Kind: kind, Namespace: ns, Name: o.GetName()}
}

// appendNew appends the resources of more whose key skip does not reject.
func appendNew[T object](list, more []T, kind string, skip func(Key) bool) []T {
	for _, r := range more {
		if !skip(keyOf(kind, r)) {
			list = append(list, r)
		}
	}
	return list
}

// keep returns the resources of list whose key keep accepts, in a new
// slice so that the original Config is left as it was.
func keep[T object](list []T, kind string, keep func(Key) bool) []T {
	var out []T
	for _, r := range list {
		if keep(keyOf(kind, r)) {
			out = append(out, r)
		}
	}
	return out
}

// Keys lists the keys of every resource of c, in kind order and then in
// the order the resources were loaded.
func (c *Config) Keys() []Key {
	var keys []Key
	add := func(kind string, o object) { keys = append(keys, keyOf(kind, o)) }
	for _, r := range c.Gateways {
		add("Gateway", r)
	}
	for _, r := range c.VirtualServices {
		add("VirtualService", r)
	}
	for _, r := range c.DestinationRules {
		add("DestinationRule", r)
	}
	for _, r := range c.ServiceEntries {
		add("ServiceEntry", r)
	}
	for _, r := range c.WorkloadEntries {
		add("WorkloadEntry", r)
	}
	for _, r := range c.AuthorizationPolicies {
		add("AuthorizationPolicy", r)
	}
	for _, r := range c.RequestAuthentications {
		add("RequestAuthentication", r)
	}
	for _, r := range c.PeerAuthentications {
		add("PeerAuthentication", r)
	}
	for _, r := range c.WasmPlugins {
		add("WasmPlugin", r)
	}
	for _, r := range c.EnvoyFilters {
		add("EnvoyFilter", r)
	}
	for _, r := range c.RateLimitPolicies {
		add("RateLimitPolicy", r)
	}
	return keys
}

// Filter returns a copy of c holding only the resources keep accepts.
// Services are kept whole: they are the registry, not configuration.
func (c *Config) Filter(accept func(Key) bool) *Config {
	out := &Config{
		Gateways:               keep(c.Gateways, "Gateway", accept),
		VirtualServices:        keep(c.VirtualServices, "VirtualService", accept),
		DestinationRules:       keep(c.DestinationRules, "DestinationRule", accept),
		ServiceEntries:         keep(c.ServiceEntries, "ServiceEntry", accept),
		WorkloadEntries:        keep(c.WorkloadEntries, "WorkloadEntry", accept),
		AuthorizationPolicies:  keep(c.AuthorizationPolicies, "AuthorizationPolicy", accept),
		RequestAuthentications: keep(c.RequestAuthentications, "RequestAuthentication", accept),
		PeerAuthentications:    keep(c.PeerAuthentications, "PeerAuthentication", accept),
		WasmPlugins:            keep(c.WasmPlugins, "WasmPlugin", accept),
		EnvoyFilters:           keep(c.EnvoyFilters, "EnvoyFilter", accept),
		RateLimitPolicies:      keep(c.RateLimitPolicies, "RateLimitPolicy", accept),
		Services:               append([]*Service(nil), c.Services...),
		Origins:                map[Key]Origin{},
		lines:                  map[Key]*fieldLines{},
	}
	for _, k := range out.Keys() {
		if o, ok := c.Origins[k]; ok {
			out.Origins[k] = o
		}
		if l, ok := c.lines[k]; ok {
			out.lines[k] = l
		}
	}
	return out
}

// WithoutInvalid returns a copy of c without the resources that have an
// Error finding, so the control plane can serve everything else. A
// finding that names a file only removes the resource read from that
// file: the duplicate dropped by LoadDir does not take the first
// definition with it.
func (c *Config) WithoutInvalid(findings []Finding) *Config {
	bad := map[Key][]string{}
	for _, f := range findings {
		if f.Severity == Error && f.Resource != (Key{}) {
			bad[f.Resource] = append(bad[f.Resource], f.File)
		}
	}
	return c.Filter(func(k Key) bool {
		files, ok := bad[k]
		if !ok {
			return true
		}
		origin := c.Origins[k]
		for _, f := range files {
			if f == "" || f == origin.File {
				return false
			}
		}
		return true
	})
}
