package authz

import "github.com/waygate/waygate/filters"

// counters are the filter's counters. The rules prefix goes before the
// enforced counters and the shadow prefix before the shadow ones, which
// is how Istio's istio_dry_run_allow_shadow_denied comes about.
type counters struct {
	allowed, denied             filters.Counter
	shadowAllowed, shadowDenied filters.Counter
	logged, notLogged           filters.Counter
}

func newCounters(s filters.Stats, rulesPrefix, shadowPrefix string) counters {
	c := func(name string) filters.Counter {
		if s == nil {
			return nopCounter{}
		}
		return s.Counter("rbac." + name)
	}
	return counters{
		allowed:       c(rulesPrefix + "allowed"),
		denied:        c(rulesPrefix + "denied"),
		shadowAllowed: c(shadowPrefix + "shadow_allowed"),
		shadowDenied:  c(shadowPrefix + "shadow_denied"),
		logged:        c(rulesPrefix + "logged"),
		notLogged:     c(rulesPrefix + "not_logged"),
	}
}

type nopCounter struct{}

func (nopCounter) Inc()       {}
func (nopCounter) Add(uint64) {}
