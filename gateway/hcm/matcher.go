package hcm

import (
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/router"
)

// tableMatcher is a route table with its matcher bound, for
// Exchange.SetRouteMatcher.
type tableMatcher struct {
	table *router.Table
	match func(*filters.Exchange) filters.Route
}

// matcherFor returns the route matcher of t. The matcher of the last
// table seen is kept, so that requests do not allocate a closure each:
// an RDS table changes only when a new snapshot brings one.
func (c *Config) matcherFor(t *router.Table) func(*filters.Exchange) filters.Route {
	if m := c.matcher.Load(); m != nil && m.table == t {
		return m.match
	}
	m := &tableMatcher{table: t, match: noRoute}
	if t != nil {
		m.match = t.MatchExchange
	}
	c.matcher.Store(m)
	return m.match
}

func noRoute(*filters.Exchange) filters.Route { return nil }
