package router

import (
	"context"
	"io"
	"math/rand/v2"
	"time"

	"github.com/waygate/waygate/filters"
	routes "github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// mirrorTimeout bounds a shadow request; nobody waits for its answer.
const mirrorTimeout = 10 * time.Second

// mirror sends fire-and-forget copies of the request to the route's
// mirror clusters, with "-shadow" appended to the authority as Envoy
// does. Requests with a body are mirrored only once bodies can be
// buffered for it; the copies carry headers only otherwise.
func (f *filter) mirror(x *filters.Exchange, fwd *routes.Forward, endStream bool) {
	if len(fwd.Mirrors) == 0 || !endStream {
		return
	}
	set := upstream.SetFrom(x.Context)
	if set == nil {
		return
	}
	for i := range fwd.Mirrors {
		m := &fwd.Mirrors[i]
		if !m.Sampled(rand.Uint64()) {
			continue
		}
		cl := set.Cluster(m.MirrorCluster(&x.Request))
		if cl == nil {
			continue
		}
		ep, err := cl.Pick(upstream.PickContext{})
		if err != nil {
			continue
		}
		shadow := *x
		shadow.Request.Header = x.Request.Header.Clone()
		switch {
		case m.HostRewriteLiteral != "":
			shadow.Request.Authority = m.HostRewriteLiteral
		case !m.DisableShadowHostSuffixAppend:
			shadow.Request.Authority = shadowHost(x.Request.Authority)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(x.Context), mirrorTimeout)
		req := newUpstreamRequest(ctx, &shadow, ep.Address, true)
		downstreamH2 := x.Request.Protocol == "HTTP/2.0"
		go func() {
			defer cancel()
			resp, err := cl.RoundTrip(ep, req, downstreamH2)
			if err == nil {
				cl.Report(ep, resp.StatusCode, nil)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
}

// shadowHost appends -shadow to the host part of an authority.
func shadowHost(a string) string {
	host, port := a, ""
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == ':' {
			host, port = a[:i], a[i:]
			break
		}
		if a[i] < '0' || a[i] > '9' {
			break
		}
	}
	return host + "-shadow" + port
}
