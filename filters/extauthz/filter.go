package extauthz

import (
	"context"
	"math/rand/v2"
	"net/http"

	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/filters"
)

// Response code details and flag of the filter's local replies, as Envoy
// sets them.
const (
	detailsDenied   = "ext_authz_denied"
	detailsError    = "ext_authz_error"
	detailsTooLarge = "ext_authz_request_payload_too_large"
	flagUAEX        = "UAEX"
)

// filter is one stream's ext_authz filter.
type filter struct {
	f      *Factory
	cfg    *Config
	body   *bodySettings // nil: check on headers
	ctxExt map[string]string

	done bool // checked (or skipped) already
	// client are headers to add to the downstream response.
	client http.Header
}

// bodyFilter is the filter when the body goes to the service.
type bodyFilter struct{ *filter }

// OnRequestHeaders is Envoy's decodeHeaders: skip the check when
// filter_enabled_metadata does not match or filter_enabled draws no;
// wait for the body when it is to be sent; else check now.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/ext_authz_filter
func (fl *filter) OnRequestHeaders(x *filters.Exchange, endStream bool) filters.Status {
	c := fl.cfg
	if c.enabledMetadata != nil && !c.enabledMetadata.Matches(x) {
		fl.done = true
		return filters.Continue
	}
	if c.enabledPercent != nil && !draw(c.enabledPercent) {
		fl.done = true
		fl.f.st.disabled.Inc()
		if c.denyAtDisable {
			x.SendLocalReply(filters.LocalReply{Status: http.StatusForbidden, Details: detailsDenied, Flag: flagUAEX})
			return filters.Stop
		}
		return filters.Continue
	}
	if fl.body != nil && !endStream {
		return filters.StopAndBuffer
	}
	fl.done = true
	return fl.check(x, nil, false)
}

// OnRequestBody buffers up to max_request_bytes, then checks with the
// body. A longer body is sent in part when allow_partial_message, else
// the request is refused with 413, as Envoy does.
func (fl *bodyFilter) OnRequestBody(x *filters.Exchange, body *filters.Buffer, endStream bool) filters.Status {
	if fl.done {
		return filters.Continue
	}
	max := fl.body.max
	if body.Len() >= max && (body.Len() > max || !endStream) {
		if !fl.body.allowPartial {
			fl.done = true
			x.SendLocalReply(filters.LocalReply{Status: http.StatusRequestEntityTooLarge, Body: "Payload Too Large", Details: detailsTooLarge})
			return filters.Stop
		}
		fl.done = true
		return fl.check(x, body.Bytes()[:max], true)
	}
	if !endStream {
		return filters.StopAndBuffer
	}
	fl.done = true
	return fl.check(x, body.Bytes(), false)
}

// OnResponseHeaders adds the headers an allowing service asked to send
// to the client.
func (fl *filter) OnResponseHeaders(x *filters.Exchange, _ bool) filters.Status {
	for k, vs := range fl.client {
		if x.Response.Header == nil {
			x.Response.Header = http.Header{}
		}
		x.Response.Header[k] = append(x.Response.Header[k], vs...)
	}
	return filters.Continue
}

func (fl *filter) check(x *filters.Exchange, body []byte, partial bool) filters.Status {
	ctx := x.Context
	if ctx == nil {
		ctx = context.Background()
	}
	c := fl.cfg
	var d decision
	if c.http != nil {
		d = c.checkHTTP(ctx, fl.f.env.Upstream, x, body, partial)
	} else if cl, err := fl.f.grpc.client(c.grpc, fl.f.dialer); err != nil {
		d = decision{verdict: failed, err: err}
	} else {
		d = c.checkGRPC(ctx, cl, x, body, fl.ctxExt)
	}
	return fl.apply(x, d)
}

func (fl *filter) apply(x *filters.Exchange, d decision) filters.Status {
	c, st := fl.cfg, &fl.f.st
	switch d.verdict {
	case denied:
		st.denied.Inc()
		x.SendLocalReply(filters.LocalReply{Status: d.status, Body: string(d.body), Header: d.deniedHeaders, Details: detailsDenied, Flag: flagUAEX})
		return filters.Stop
	case failed:
		st.error.Inc()
		if x.Log != nil {
			x.Log.Debug("ext_authz check failed", "error", d.err)
		}
		if c.failureModeAllow {
			st.failureModeAllowed.Inc()
			if c.failureModeAllowHeaderAdd {
				x.Request.Header.Set("X-Envoy-Auth-Failure-Mode-Allowed", "true")
			}
			return filters.Continue
		}
		x.SendLocalReply(filters.LocalReply{Status: c.statusOnError, Details: detailsError, Flag: flagUAEX})
		return filters.Stop
	}
	st.ok.Inc()
	changed := len(d.setHeaders) > 0 || len(d.appendHeaders) > 0 || len(d.removeHeaders) > 0
	if x.Request.Header == nil && changed {
		x.Request.Header = http.Header{}
	}
	for k, vs := range d.setHeaders {
		x.Request.Header[k] = vs
	}
	for k, vs := range d.appendHeaders {
		x.Request.Header[k] = append(x.Request.Header[k], vs...)
	}
	for _, k := range d.removeHeaders {
		x.Request.Header.Del(k)
	}
	for k, v := range d.metadata {
		x.SetMetadata(FilterName, k, v)
	}
	fl.client = d.clientHeaders
	if changed && c.clearRouteCache {
		x.ClearRouteCache()
	}
	return filters.Continue
}

// draw picks the share of requests filter_enabled's default_value gives.
func draw(p *typev3.FractionalPercent) bool {
	var den uint32 = 100
	switch p.GetDenominator() {
	case typev3.FractionalPercent_TEN_THOUSAND:
		den = 10000
	case typev3.FractionalPercent_MILLION:
		den = 1000000
	}
	return rand.Uint32N(den) < p.GetNumerator()
}
