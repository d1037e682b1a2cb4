package router

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/waygate/waygate/filters"
	routes "github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// Local reply bodies and details, as Envoy words them.
const (
	bodyNoHealthy     = "no healthy upstream"
	bodyTimeout       = "upstream request timeout"
	bodyConnectFailed = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
	bodyReset         = "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
	bodyOverflow      = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
)

func (f *filter) OnRequestHeaders(x *filters.Exchange, endStream bool) filters.Status {
	rt, wc := routes.Resolve(x.MatchedRoute())
	if rt == nil {
		f.local(x, nil, filters.LocalReply{Status: http.StatusNotFound, Details: "route_not_found", Flag: "NR"})
		return filters.Stop
	}
	vh := rt.VHost()
	if vh.RequireTLS == "ALL" && x.Request.Scheme == "http" ||
		vh.RequireTLS == "EXTERNAL_ONLY" && x.Request.Scheme == "http" && !isInternal(x) {
		loc := "https://" + x.Request.Authority + x.Request.Path
		f.local(x, rt, filters.LocalReply{Status: http.StatusMovedPermanently, Header: http.Header{"Location": {loc}}, Details: "direct_response"})
		return filters.Stop
	}
	switch {
	case rt.Redirect != nil:
		loc := rt.Location(&x.Request)
		f.local(x, rt, filters.LocalReply{Status: rt.Redirect.Code, Header: http.Header{"Location": {loc}}, Details: "direct_response"})
		return filters.Stop
	case rt.Direct != nil:
		h := http.Header{}
		if s := rt.Direct.Status; s == http.StatusCreated || (s >= 300 && s < 400) {
			h.Set("Location", rt.Location(&x.Request))
		}
		f.local(x, rt, filters.LocalReply{Status: rt.Direct.Status, Body: rt.Direct.Body, Header: h, Details: "direct_response"})
		return filters.Stop
	case rt.Forward == nil:
		f.local(x, rt, filters.LocalReply{Status: http.StatusNotFound, Details: "route_not_found", Flag: "NR"})
		return filters.Stop
	}
	f.forward(x, rt, wc, endStream)
	return filters.Continue
}

// forward sends the request upstream, retrying as the route's policy
// allows, and streams the response back.
//
// picked is the weighted cluster chosen when the route was matched, nil
// when the route has none (or it came from elsewhere): then the pick is
// made here.
func (f *filter) forward(x *filters.Exchange, rt *routes.Route, picked *routes.WeightedCluster, endStream bool) {
	fwd := rt.Forward
	vh := rt.VHost()
	var clusterName string
	var wc *routes.WeightedCluster
	if picked != nil {
		clusterName, wc = picked.ClusterFor(&x.Request), picked
	} else {
		clusterName, wc = rt.Target(&x.Request, rand.Uint64())
	}
	set := upstream.SetFrom(x.Context)
	var cl *upstream.Cluster
	if set != nil && clusterName != "" {
		cl = set.Cluster(clusterName)
	}
	x.Info.UpstreamCluster = clusterName
	if cl == nil {
		f.local(x, rt, filters.LocalReply{Status: fwd.ClusterNotFoundCode, Details: "cluster_not_found", Flag: "NC"})
		return
	}

	h := x.Request.Header
	timeout := fwd.Timeout
	if v := first(h["X-Envoy-Upstream-Rq-Timeout-Ms"]); v != "" {
		if ms, err := strconv.ParseUint(v, 10, 32); err == nil {
			timeout = time.Duration(ms) * time.Millisecond
		}
	}
	delete(h, "X-Envoy-Upstream-Rq-Timeout-Ms")
	if f.cfg.respectExpectedTimeout {
		if v := first(h["X-Envoy-Expected-Rq-Timeout-Ms"]); v != "" {
			if ms, err := strconv.ParseUint(v, 10, 32); err == nil {
				timeout = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if !f.cfg.suppressEnvoyHeaders && timeout > 0 {
		if timeout == fwd.Timeout && fwd.TimeoutMs != nil {
			h["X-Envoy-Expected-Rq-Timeout-Ms"] = fwd.TimeoutMs
		} else {
			h["X-Envoy-Expected-Rq-Timeout-Ms"] = []string{strconv.FormatInt(timeout.Milliseconds(), 10)}
		}
	}
	rt.FinalizeRequest(x, wc, true)

	// The route timeout is a deadline the upstream pool applies to the
	// connection (see upstream.Cluster.Send), not a context: a context
	// with a timer, and the watch the pool puts on it, cost a request
	// eight allocations.
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}

	f.mirror(x, fwd, endStream)

	// Ring hash and Maglev pick by the route's hash policies.
	var pc upstream.PickContext
	var setCookie string
	if cl.Hashing() {
		pc.Hash, pc.HasHash, setCookie = fwd.Hash(routes.HashInput{Request: &x.Request, Conn: &x.Downstream})
	}

	if isUpgrade(h) {
		ctx := x.Context
		if cl.ProxyProtocol() {
			ctx = upstream.WithDownstream(ctx, connectionPeer(x), x.Downstream.LocalAddr)
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		f.upgrade(ctx, x, rt, cl, pc)
		return
	}

	retry := fwd.Retry
	maxAttempts := 1
	if retry != nil && endStream && retry.RetriableRequest(&x.Request) {
		// Without a body a request can be sent again as is; requests
		// with a body are not retried until bodies are buffered for it.
		maxAttempts += int(retry.NumRetries)
	}
	perTry := time.Duration(0)
	if retry != nil {
		perTry = retry.PerTryTimeout
	}
	if v := first(h["X-Envoy-Upstream-Rq-Per-Try-Timeout-Ms"]); v != "" {
		if ms, err := strconv.ParseUint(v, 10, 32); err == nil {
			perTry = time.Duration(ms) * time.Millisecond
		}
		delete(h, "X-Envoy-Upstream-Rq-Per-Try-Timeout-Ms")
	}
	var tried []string
	// retrying holds one of the cluster's max_retries while a retried
	// attempt runs.
	retrying := false
	defer func() {
		if retrying {
			cl.EndRetry()
		}
	}()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		if attempt > 1 && !before(deadline) {
			// The route's time ran out in the backoff.
			f.local(x, rt, filters.LocalReply{Status: http.StatusGatewayTimeout, Body: bodyTimeout, Details: "upstream_response_timeout", Flag: "UT"})
			return
		}
		x.Info.Attempts = attempt
		ep, err := pickAvoiding(cl, pc, tried, retry)
		if err != nil {
			f.local(x, rt, filters.LocalReply{Status: http.StatusServiceUnavailable, Body: bodyNoHealthy, Details: "no_healthy_upstream", Flag: "UH"})
			return
		}
		tried = append(tried, ep.Address)
		x.Info.UpstreamHost, x.Info.UpstreamHostMetadata = ep.Address, ep.Metadata
		if vh.IncludeRequestAttemptCount {
			h.Set("X-Envoy-Attempt-Count", strconv.Itoa(attempt))
		}
		// Each try has its own deadline under the route's; it covers the
		// response body too, as the route timeout does.
		tryDeadline := deadline
		if perTry > 0 {
			if t := time.Now().Add(perTry); deadline.IsZero() || t.Before(deadline) {
				tryDeadline = t
			}
		}
		req := outboundRequest(x, ep.Address, endStream)
		cl.Stats.Count(upstream.RqTotal)
		if attempt > 1 {
			cl.Stats.Count(upstream.RqRetry)
		}
		tryStart := time.Now()
		sendCtx := x.Context
		if cl.ProxyProtocol() {
			sendCtx = upstream.WithDownstream(sendCtx, connectionPeer(x), x.Downstream.LocalAddr)
		}
		resp, err := cl.Send(sendCtx, ep, req, x.Request.Protocol == "HTTP/2.0", tryDeadline)
		last := attempt >= maxAttempts
		if retrying {
			cl.EndRetry()
			retrying = false
		}
		if errors.Is(err, upstream.ErrOverflow) {
			// A circuit breaker refused the attempt; Envoy does not
			// retry an overflow.
			f.overflow(x, rt)
			return
		}
		if err != nil {
			tryTimedOut := errors.Is(err, context.DeadlineExceeded)
			if rep := x.LocalReply(); rep != nil {
				// A request body filter answered while the body was
				// being sent (the connection manager then cancels the
				// attempt, whatever error the upstream reports).
				f.local(x, rt, *rep)
				return
			}
			if x.Context.Err() != nil {
				// The downstream went away; nobody is left to answer.
				panic(http.ErrAbortHandler)
			}
			if tryTimedOut {
				cl.Stats.Count(upstream.RqTimeout)
				cl.Report(ep, http.StatusGatewayTimeout, err)
				if before(deadline) && !last && retry != nil && retriableTimeout(retry) && startRetry(cl, &retrying) {
					backoff(x.Context, deadline, retry, attempt)
					continue
				}
				f.local(x, rt, filters.LocalReply{Status: http.StatusGatewayTimeout, Body: bodyTimeout, Details: "upstream_response_timeout", Flag: "UT"})
				return
			}
			connectFail := isConnectFailure(err)
			if connectFail {
				cl.Stats.Count(upstream.CxConnectFail)
			}
			cl.Report(ep, 0, err)
			if !last && retry != nil && retriableError(retry, connectFail) && startRetry(cl, &retrying) {
				backoff(x.Context, deadline, retry, attempt)
				continue
			}
			if connectFail {
				f.local(x, rt, filters.LocalReply{Status: http.StatusServiceUnavailable, Body: bodyConnectFailed, Details: "upstream_reset_before_response_started{connection_failure}", Flag: "UF"})
			} else {
				f.local(x, rt, filters.LocalReply{Status: http.StatusServiceUnavailable, Body: bodyReset, Details: "upstream_reset_before_response_started{connection_termination}", Flag: "UC"})
			}
			return
		}
		cl.Stats.Response(resp.StatusCode, time.Since(tryStart))
		cl.Report(ep, resp.StatusCode, nil)
		if !last && retry != nil && retriableStatus(retry, resp) && startRetry(cl, &retrying) {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			backoff(x.Context, deadline, retry, attempt)
			continue
		}
		if attempt > 1 {
			cl.Stats.Count(upstream.RqRetrySuccess)
		}
		x.Info.UpstreamServiceTime = time.Since(start)
		if setCookie != "" {
			resp.Header.Add("Set-Cookie", setCookie)
		}
		f.respond(x, rt, wc, resp)
		return
	}
}

// overflow answers a request a circuit breaker refused: 503 with
// x-envoy-overloaded, flag UO.
//
// See https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#x-envoy-overloaded
func (f *filter) overflow(x *filters.Exchange, rt *routes.Route) {
	var h http.Header
	if !f.cfg.suppressEnvoyHeaders {
		h = http.Header{"X-Envoy-Overloaded": {"true"}}
	}
	f.local(x, rt, filters.LocalReply{Status: http.StatusServiceUnavailable, Body: bodyOverflow, Header: h, Details: "upstream_reset_before_response_started{overflow}", Flag: "UO"})
}

// before reports whether a deadline (zero for none) is still ahead.
func before(deadline time.Time) bool { return deadline.IsZero() || time.Now().Before(deadline) }

// newUpstreamRequest builds the request for one attempt, carrying ctx.
func newUpstreamRequest(ctx context.Context, x *filters.Exchange, addr string, endStream bool) *http.Request {
	return outboundRequest(x, addr, endStream).WithContext(ctx)
}

// outbound is a request and its URL, allocated together.
type outbound struct {
	req http.Request
	u   url.URL
}

// outboundRequest builds the request for one attempt, without a
// context: upstream.Cluster.Send takes it apart. The path is sent byte
// for byte as the downstream sent it (after rewrites).
func outboundRequest(x *filters.Exchange, addr string, endStream bool) *http.Request {
	o := &outbound{}
	path, query, _ := strings.Cut(x.Request.Path, "?")
	o.u = url.URL{Scheme: "http", Host: addr, RawQuery: query}
	if strings.HasPrefix(path, "//") {
		o.u.Path = path
	} else {
		o.u.Opaque = path
	}
	keepUserAgentUnset(x.Request.Header)
	o.req = http.Request{
		Method:     x.Request.Method,
		URL:        &o.u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     x.Request.Header,
		Host:       x.Request.Authority,
	}
	if !endStream {
		o.req.Body = x.RequestBody
		o.req.ContentLength = x.Request.ContentLength
		if o.req.ContentLength == 0 {
			o.req.ContentLength = -1
		}
		// The request trailers go on after the body, as Envoy forwards
		// them; the map fills when the body ends. Over HTTP/1.1 they
		// need a chunked body.
		if t := x.Request.Trailer; t != nil {
			o.req.Trailer = t
			if len(t) > 0 {
				o.req.ContentLength = -1
			}
		}
	}
	return &o.req
}

// respond streams the upstream response through the response filters.
// A body read that failed with context.DeadlineExceeded ran out of the
// route's (or the try's) time.
func (f *filter) respond(x *filters.Exchange, rt *routes.Route, wc *routes.WeightedCluster, resp *http.Response) {
	defer resp.Body.Close()
	x.Response.Status = resp.StatusCode
	// Envoy's %RESPONSE_CODE_DETAILS% for an answer the upstream gave;
	// a response filter's local reply overrides it.
	x.Info.ResponseCodeDetails = "via_upstream"
	h := x.Response.Header
	for k, v := range resp.Header {
		h[k] = v
	}
	stripResponseHopByHop(h)
	if !f.cfg.suppressEnvoyHeaders {
		h["X-Envoy-Upstream-Service-Time"] = millisValue(x.Info.UpstreamServiceTime)
	}
	if rt.VHost().IncludeAttemptCountInResponse {
		h.Set("X-Envoy-Attempt-Count", strconv.Itoa(x.Info.Attempts))
	}
	rt.ApplyResponseHeaders(x, wc)
	enc := x.Encoder
	noBody := resp.Body == http.NoBody || resp.ContentLength == 0 && len(resp.Trailer) == 0
	if err := enc.WriteHeaders(noBody); err != nil {
		abortUnlessAnswered(err)
		return
	}
	if noBody {
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := resp.Body.Read(buf)
		// The last bytes of a body often come with io.EOF (always for a
		// Content-Length body): sending them as the end of the stream
		// spares a flush per response, so the downstream server writes
		// the head and the body at once.
		end := err == io.EOF && len(resp.Trailer) == 0
		if n > 0 || end {
			if werr := enc.WriteBody(buf[:n], end); werr != nil {
				abortUnlessAnswered(werr)
				return
			}
			if end {
				return
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && !enc.Started() {
				f.local(x, rt, filters.LocalReply{Status: http.StatusGatewayTimeout, Body: bodyTimeout, Details: "upstream_response_timeout", Flag: "UT"})
				return
			}
			// Mid-body failure: the only honest signal left is a reset.
			x.Info.AddResponseFlag("UR")
			panic(http.ErrAbortHandler)
		}
	}
	// Only a body with trailers gets here.
	if err := enc.WriteBody(nil, false); err != nil {
		abortUnlessAnswered(err)
		return
	}
	x.Response.Trailer = resp.Trailer
	if err := enc.WriteTrailers(resp.Trailer); err != nil {
		abortUnlessAnswered(err)
	}
}

// millis holds the decimal strings of 0 to 999, for header values in
// milliseconds; millisValue hands out one-element slices of it, read
// only, so that the usual value costs no allocation.
var millis = func() (m [1000]string) {
	for i := range m {
		m[i] = strconv.Itoa(i)
	}
	return m
}()

// millisValue is d in whole milliseconds as a header's values.
func millisValue(d time.Duration) []string {
	if ms := d.Milliseconds(); ms >= 0 && ms < int64(len(millis)) {
		return millis[ms : ms+1 : ms+1]
	}
	return []string{strconv.FormatInt(d.Milliseconds(), 10)}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// abortUnlessAnswered resets the stream after a write error, unless a
// response filter already replaced the response with a local reply.
func abortUnlessAnswered(err error) {
	if err != nil && strings.Contains(err.Error(), "local reply") {
		return
	}
	panic(http.ErrAbortHandler)
}

// local answers with a local reply, with the route's response headers
// (Envoy applies them to redirects and direct responses too).
func (f *filter) local(x *filters.Exchange, rt *routes.Route, r filters.LocalReply) {
	x.SendLocalReply(r)
	if x.Encoder == nil {
		return
	}
	if x.Encoder.Started() {
		panic(http.ErrAbortHandler)
	}
	x.Response.Status = r.Status
	h := x.Response.Header
	for k, v := range r.Header {
		h[k] = v
	}
	if r.Body != "" {
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/plain")
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(r.Body)))
	if rt != nil {
		if rt.VHost().IncludeAttemptCountInResponse && x.Info.Attempts > 0 {
			h.Set("X-Envoy-Attempt-Count", strconv.Itoa(x.Info.Attempts))
		}
		rt.ApplyResponseHeaders(x, nil)
	}
	end := r.Body == ""
	if err := x.Encoder.WriteHeaders(end); err != nil || end {
		return
	}
	_ = x.Encoder.WriteBody([]byte(r.Body), true)
}

// connectionPeer is the downstream connection's peer as the PROXY
// protocol gave it, not the x-forwarded-for client: what Envoy's
// upstream PROXY protocol header carries.
func connectionPeer(x *filters.Exchange) netip.AddrPort {
	if a := x.Downstream.SourceAddr; a.IsValid() {
		return a
	}
	return x.Downstream.RemoteAddr
}

// isInternal reports whether the connection manager marked the request
// internal (x-envoy-internal), which it removes from external ones.
func isInternal(x *filters.Exchange) bool {
	return first(x.Request.Header["X-Envoy-Internal"]) == "true"
}

func isUpgrade(h http.Header) bool {
	return first(h["Upgrade"]) != "" && strings.EqualFold(first(h["Connection"]), "upgrade")
}

// first is the first of a header's values, "" for none: Header.Get
// without canonicalizing a name that already is canonical.
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func isConnectFailure(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return false
}
