package fault

import (
	"context"
	"github.com/waygate/waygate/filters/matcher"
	"strconv"
	"time"

	"github.com/waygate/waygate/filters"
)

// Request headers that drive header-controlled faults, and the ones
// naming the downstream. Envoy reads only the first value of each.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/fault_filter#controlling-fault-injection-via-http-headers
const (
	hdrDelay             = "X-Envoy-Fault-Delay-Request"
	hdrDelayPercent      = "X-Envoy-Fault-Delay-Request-Percentage"
	hdrAbort             = "X-Envoy-Fault-Abort-Request"
	hdrAbortGRPC         = "X-Envoy-Fault-Abort-Grpc-Request"
	hdrAbortPercent      = "X-Envoy-Fault-Abort-Request-Percentage"
	hdrThroughput        = "X-Envoy-Fault-Throughput-Response"
	hdrThroughputPercent = "X-Envoy-Fault-Throughput-Response-Percentage"
	hdrDownstreamNode    = "X-Envoy-Downstream-Service-Node"
	hdrDownstreamCluster = "X-Envoy-Downstream-Service-Cluster"
)

// filter is one stream's fault filter.
type filter struct {
	f      *Factory
	active bool // holds an active-fault slot, released in OnDone
	// cluster is the downstream cluster for per-cluster stats, or "".
	cluster  string
	throttle *throttle
}

// OnRequestHeaders runs Envoy's decodeHeaders: match the request, set up
// the response rate limit, then delay, then abort, each with its own
// random draw, so a request may be delayed and then aborted.
func (fl *filter) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	c := fl.f.settings(x)
	if c.empty() || !fl.matches(x, c) {
		return filters.Continue
	}
	if c.downstreamClusterStats {
		fl.cluster = x.Request.Header.Get(hdrDownstreamCluster)
	}
	fl.setupThrottle(x, c)
	if d := fl.delay(x, c); d > 0 {
		fl.f.countDownstream(fl.cluster, "delays_injected")
		fl.f.delays.Inc()
		x.Info.AddResponseFlag("DI")
		setMetadata(x, c)
		if !sleep(x.Context, d) {
			// The downstream went away or the stream timed out:
			// nothing is left to answer, the chain resets it.
			return filters.Stop
		}
	}
	if fl.abort(x, c) {
		return filters.Stop
	}
	return filters.Continue
}

// OnDone releases the stream's active-fault slot.
func (fl *filter) OnDone(*filters.Exchange) {
	if fl.active {
		fl.active = false
		fl.f.active.Add(-1)
	}
}

// matches applies the request selectors: upstream_cluster against the
// route's cluster, downstream_nodes against
// x-envoy-downstream-service-node, then the header matchers.
func (fl *filter) matches(x *filters.Exchange, c *Config) bool {
	if c.upstreamCluster != "" {
		r := x.MatchedRoute()
		if r == nil || r.Cluster() != c.upstreamCluster {
			return false
		}
	}
	if c.downstreamNodes != nil {
		if _, ok := c.downstreamNodes[x.Request.Header.Get(hdrDownstreamNode)]; !ok {
			return false
		}
	}
	return matcher.MatchAll(c.headers, &x.Request)
}

// activate charges the stream one active fault, however many it gets.
func (fl *filter) activate(c *Config) bool {
	if fl.active {
		return true
	}
	fl.active = fl.f.tryActivate(c.maxActive)
	return fl.active
}

// delay is the delay to inject, or 0. A header delay needs the
// x-envoy-fault-delay-request header (milliseconds); without it, or with
// a value that is not a number, there is none.
func (fl *filter) delay(x *filters.Exchange, c *Config) time.Duration {
	d := c.delay
	if d == nil {
		return 0
	}
	pct, dur := d.pct, d.fixed
	if d.fromHeader {
		pct = pct.capped(x.Request.Header.Get(hdrDelayPercent))
		ms, err := strconv.ParseUint(x.Request.Header.Get(hdrDelay), 10, 63)
		if err != nil || ms > uint64(maxDelay/time.Millisecond) {
			return 0
		}
		dur = time.Duration(ms) * time.Millisecond
	}
	if dur <= 0 || !pct.draw() || !fl.activate(c) {
		return 0
	}
	return dur
}

// maxDelay bounds header delays to what time.Duration holds.
const maxDelay = time.Duration(1<<63 - 1)

func sleep(ctx context.Context, d time.Duration) bool {
	if ctx == nil {
		ctx = context.Background()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func setMetadata(x *filters.Exchange, c *Config) {
	for k, v := range c.metadata {
		x.SetMetadata(FilterName, k, v)
	}
}
