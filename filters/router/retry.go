package router

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"

	routes "github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// pickAvoiding picks an endpoint; with the previous_hosts retry predicate
// it draws again (up to host_selection_retry_max_attempts) while the pick
// is one already tried, as Envoy does. Each draw counts as a host
// selection attempt, which moves hash balancers off the hashed host.
func pickAvoiding(cl *upstream.Cluster, pc upstream.PickContext, tried []string, p *routes.RetryPolicy) (*upstream.Endpoint, error) {
	ep, err := cl.Pick(pc)
	if err != nil || len(tried) == 0 || p == nil || !hasPredicate(p, "envoy.retry_host_predicates.previous_hosts") {
		return ep, err
	}
	for i := int64(0); i < p.HostSelectionMaxAttempts && contains(tried, ep.Address); i++ {
		pc.Attempt = uint32(i + 1)
		if ep, err = cl.Pick(pc); err != nil {
			return nil, err
		}
	}
	return ep, nil
}

// startRetry takes one of the cluster's max_retries for the next
// attempt. Without one the retry overflows (upstream_rq_retry_overflow)
// and the attempt's outcome is the answer, as in Envoy.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/circuit_breaking
func startRetry(cl *upstream.Cluster, retrying *bool) bool {
	if !cl.StartRetry() {
		return false
	}
	*retrying = true
	return true
}

func hasPredicate(p *routes.RetryPolicy, name string) bool {
	for _, n := range p.HostPredicates {
		if n == name {
			return true
		}
	}
	return false
}

func contains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// retriableError says whether a failed attempt (no response) may be
// retried: connect-failure covers dial errors; reset, 5xx and
// gateway-error cover every failure before a response, as in Envoy.
func retriableError(p *routes.RetryPolicy, connectFailure bool) bool {
	if connectFailure && p.On.Has(routes.RetryConnectFailure) {
		return true
	}
	return p.On&(routes.RetryReset|routes.Retry5xx|routes.RetryGatewayError|routes.RetryResetBeforeRequest) != 0
}

// retriableTimeout says whether a try that hit its per-try timeout may
// be retried: Envoy counts a try that never answered as a 5xx, a gateway
// error and a reset.
func retriableTimeout(p *routes.RetryPolicy) bool {
	return p.On&(routes.RetryReset|routes.Retry5xx|routes.RetryGatewayError) != 0
}

// retriableStatus says whether a response asks for another attempt.
func retriableStatus(p *routes.RetryPolicy, resp *http.Response) bool {
	c := resp.StatusCode
	switch {
	case p.On.Has(routes.Retry5xx) && c >= 500:
		return true
	case p.On.Has(routes.RetryGatewayError) && (c == 502 || c == 503 || c == 504):
		return true
	case p.On.Has(routes.RetryRetriable4xx) && c == http.StatusConflict:
		return true
	case p.RetriableStatus(c):
		return true
	case p.RetriableResponse(resp.Header):
		return true
	}
	return false
}

// backoff sleeps before the next attempt: Envoy's fully jittered
// exponential backoff, base * 2^(attempt-1), capped at the max.
func backoff(ctx context.Context, deadline time.Time, p *routes.RetryPolicy, attempt int) {
	ceil := p.BackOffBase << uint(min(attempt-1, 16))
	if ceil > p.BackOffMax || ceil <= 0 {
		ceil = p.BackOffMax
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	if !deadline.IsZero() {
		// Not past the route's timeout.
		d = max(min(d, time.Until(deadline)), 0)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
