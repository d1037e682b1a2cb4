package router

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/matcher"
)

// RetryOn is the set of conditions a retry policy retries on, Envoy's
// x-envoy-retry-on and x-envoy-retry-grpc-on values
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#x-envoy-retry-on).
type RetryOn uint32

// Retry conditions.
const (
	Retry5xx RetryOn = 1 << iota
	RetryGatewayError
	RetryReset
	RetryResetBeforeRequest
	RetryConnectFailure
	RetryEnvoyRateLimited
	RetryRetriable4xx
	RetryRefusedStream
	RetryRetriableStatusCodes
	RetryRetriableHeaders
	RetryHTTP3PostConnectFailure
	RetryGrpcCancelled
	RetryGrpcDeadlineExceeded
	RetryGrpcInternal
	RetryGrpcResourceExhausted
	RetryGrpcUnavailable
)

var retryOnNames = map[string]RetryOn{
	"5xx":                        Retry5xx,
	"gateway-error":              RetryGatewayError,
	"reset":                      RetryReset,
	"reset-before-request":       RetryResetBeforeRequest,
	"connect-failure":            RetryConnectFailure,
	"envoy-ratelimited":          RetryEnvoyRateLimited,
	"retriable-4xx":              RetryRetriable4xx,
	"refused-stream":             RetryRefusedStream,
	"retriable-status-codes":     RetryRetriableStatusCodes,
	"retriable-headers":          RetryRetriableHeaders,
	"http3-post-connect-failure": RetryHTTP3PostConnectFailure,
	"cancelled":                  RetryGrpcCancelled,
	"deadline-exceeded":          RetryGrpcDeadlineExceeded,
	"internal":                   RetryGrpcInternal,
	"resource-exhausted":         RetryGrpcResourceExhausted,
	"unavailable":                RetryGrpcUnavailable,
}

// ParseRetryOn parses a comma-separated retry_on list, the same syntax
// the router accepts in x-envoy-retry-on headers.
func ParseRetryOn(s string) (RetryOn, error) {
	var r RetryOn
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		v, ok := retryOnNames[tok]
		if !ok {
			return r, fmt.Errorf("unknown retry condition %q; valid: 5xx, gateway-error, reset, reset-before-request, connect-failure, envoy-ratelimited, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable", tok)
		}
		r |= v
	}
	return r, nil
}

// Has reports whether every condition in c is in the set.
func (r RetryOn) Has(c RetryOn) bool { return r&c == c }

// RetryPolicy is a compiled envoy.config.route.v3.RetryPolicy with Envoy's
// defaults filled in.
type RetryPolicy struct {
	On RetryOn
	// NumRetries defaults to 1.
	NumRetries uint32
	// PerTryTimeout is 0 when each try may use the route's whole timeout.
	PerTryTimeout     time.Duration
	PerTryIdleTimeout time.Duration
	// RetriableStatusCodes apply with RetryRetriableStatusCodes.
	RetriableStatusCodes []uint32
	// BackOffBase defaults to 25ms and BackOffMax to ten times the base.
	BackOffBase time.Duration
	BackOffMax  time.Duration
	// HostPredicates are the names of retry_host_predicate extensions,
	// such as envoy.retry_host_predicates.previous_hosts.
	HostPredicates []string
	// HostSelectionMaxAttempts defaults to 1.
	HostSelectionMaxAttempts int64
	// PriorityName is the retry_priority extension, if any.
	PriorityName            string
	retriableHeaders        []matcher.Header
	retriableRequestHeaders []matcher.Header
}

// RetriableStatus reports whether a response status is retriable under
// retriable-status-codes.
func (p *RetryPolicy) RetriableStatus(code int) bool {
	if !p.On.Has(RetryRetriableStatusCodes) {
		return false
	}
	for _, c := range p.RetriableStatusCodes {
		if int(c) == code {
			return true
		}
	}
	return false
}

func compileRetryPolicy(p *routev3.RetryPolicy) (*RetryPolicy, error) {
	if p == nil {
		return nil, nil
	}
	on, err := ParseRetryOn(p.GetRetryOn())
	if err != nil {
		return nil, fmt.Errorf("retry_on: %w", err)
	}
	rp := &RetryPolicy{
		On:                       on,
		NumRetries:               1,
		PerTryTimeout:            p.GetPerTryTimeout().AsDuration(),
		PerTryIdleTimeout:        p.GetPerTryIdleTimeout().AsDuration(),
		RetriableStatusCodes:     p.GetRetriableStatusCodes(),
		BackOffBase:              25 * time.Millisecond,
		HostSelectionMaxAttempts: p.GetHostSelectionRetryMaxAttempts(),
	}
	if n := p.GetNumRetries(); n != nil {
		rp.NumRetries = n.GetValue()
	}
	if rp.HostSelectionMaxAttempts <= 0 {
		rp.HostSelectionMaxAttempts = 1
	}
	if b := p.GetRetryBackOff(); b != nil {
		if b.GetBaseInterval() == nil || b.GetBaseInterval().AsDuration() <= 0 {
			return nil, fmt.Errorf("retry_back_off.base_interval: must be greater than 0")
		}
		rp.BackOffBase = b.GetBaseInterval().AsDuration()
		if b.GetMaxInterval() != nil {
			rp.BackOffMax = b.GetMaxInterval().AsDuration()
			if rp.BackOffMax < rp.BackOffBase {
				return nil, fmt.Errorf("retry_back_off.max_interval: must not be less than base_interval")
			}
		}
	}
	if rp.BackOffMax == 0 {
		rp.BackOffMax = 10 * rp.BackOffBase
	}
	for _, h := range p.GetRetryHostPredicate() {
		rp.HostPredicates = append(rp.HostPredicates, h.GetName())
	}
	rp.PriorityName = p.GetRetryPriority().GetName()
	if rp.retriableHeaders, err = matcher.CompileHeaders(p.GetRetriableHeaders(), "retriable_headers"); err != nil {
		return nil, err
	}
	if rp.retriableRequestHeaders, err = matcher.CompileHeaders(p.GetRetriableRequestHeaders(), "retriable_request_headers"); err != nil {
		return nil, err
	}
	return rp, nil
}

// RetriableRequest reports whether the request may be retried at all:
// with retriable_request_headers, one of them must match.
func (p *RetryPolicy) RetriableRequest(req *filters.Request) bool {
	if len(p.retriableRequestHeaders) == 0 {
		return true
	}
	for i := range p.retriableRequestHeaders {
		if p.retriableRequestHeaders[i].Match(req) {
			return true
		}
	}
	return false
}

// RetriableResponse reports whether response headers match one of
// retriable_headers, for the retriable-headers condition.
func (p *RetryPolicy) RetriableResponse(h http.Header) bool {
	if !p.On.Has(RetryRetriableHeaders) {
		return false
	}
	view := filters.Request{Header: h}
	for i := range p.retriableHeaders {
		if p.retriableHeaders[i].Match(&view) {
			return true
		}
	}
	return false
}
