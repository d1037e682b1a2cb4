package headers

import (
	"github.com/waygate/waygate/filters"
)

// filter is one stream's header mutation.
type filter struct {
	f     *Factory
	route *Config
}

// order returns the configs in the order they apply. Envoy applies the
// filter-level mutations first and the route's after them, so that the
// route's overwrite wins; with most_specific_header_mutations_wins the
// route's come first and the listener's win.
func (fl *filter) order() [2]*Config {
	if fl.f.specificWins {
		return [2]*Config{fl.route, fl.f.cfg}
	}
	return [2]*Config{fl.f.cfg, fl.route}
}

// OnRequestHeaders applies request_mutations. A changed :authority
// clears the route cache, so routing sees the new host.
func (fl *filter) OnRequestHeaders(x *filters.Exchange, endStream bool) filters.Status {
	if x.Request.Header == nil {
		x.Request.Header = make(map[string][]string)
	}
	host := x.Request.Authority
	for _, c := range fl.order() {
		if c != nil {
			c.request.apply(x.Request.Header, &x.Request.Authority, x)
		}
	}
	if x.Request.Authority != host {
		x.ClearRouteCache()
	}
	return filters.Continue
}

// OnResponseHeaders applies response_mutations, to upstream responses
// and local replies alike.
func (fl *filter) OnResponseHeaders(x *filters.Exchange, endStream bool) filters.Status {
	if x.Response.Header == nil {
		x.Response.Header = make(map[string][]string)
	}
	for _, c := range fl.order() {
		if c != nil {
			c.response.apply(x.Response.Header, nil, x)
		}
	}
	return filters.Continue
}
