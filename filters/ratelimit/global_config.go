package ratelimit

import (
	"errors"
	"fmt"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"

	"github.com/waygate/waygate/filters/headers"
	"github.com/waygate/waygate/filters/matcher"
)

// defaultTimeout is Envoy's timeout for a rate limit service call.
const defaultTimeout = 20 * time.Millisecond

// globalConfig is a compiled RateLimit (the listener-level config of the
// global filter).
type globalConfig struct {
	domain            string
	stage             uint32
	requestType       string
	timeout           time.Duration
	failureModeDeny   bool
	resourceExhausted bool
	cluster           string
	authority         string
	xRateLimitHeaders bool
	noEnvoyHeader     bool
	limitedStatus     int
	errorStatus       int
	responseHeaders   headers.Options
	statPrefix        string
	enabled, enforced *matcher.Percent
	rateLimits        []rateLimit
	ownLimits         bool
	retryAfter        bool
}

// routeConfig is a compiled RateLimitPerRoute.
type routeConfig struct {
	vhOption   int32
	domain     string
	rateLimits []rateLimit
	ownLimits  bool
}

func compileGlobal(pb *rlv3.RateLimit) (*globalConfig, error) {
	if pb.GetDomain() == "" {
		return nil, errors.New("domain: must not be empty")
	}
	if pb.GetStage() > 10 {
		return nil, fmt.Errorf("stage: %d is above 10", pb.GetStage())
	}
	svc := pb.GetRateLimitService().GetGrpcService()
	if svc == nil {
		return nil, errors.New("rate_limit_service.grpc_service: must be set")
	}
	eg := svc.GetEnvoyGrpc()
	if eg == nil || eg.GetClusterName() == "" {
		return nil, errors.New("rate_limit_service.grpc_service.envoy_grpc.cluster_name: must be set (google_grpc is not supported)")
	}
	c := &globalConfig{
		domain:            pb.GetDomain(),
		stage:             pb.GetStage(),
		requestType:       pb.GetRequestType(),
		timeout:           defaultTimeout,
		failureModeDeny:   pb.GetFailureModeDeny(),
		resourceExhausted: pb.GetRateLimitedAsResourceExhausted(),
		cluster:           eg.GetClusterName(),
		authority:         eg.GetAuthority(),
		xRateLimitHeaders: pb.GetEnableXRatelimitHeaders() == rlv3.RateLimit_DRAFT_VERSION_03,
		noEnvoyHeader:     pb.GetDisableXEnvoyRatelimitedHeader(),
		limitedStatus:     429,
		errorStatus:       500,
		statPrefix:        pb.GetStatPrefix(),
		retryAfter:        pb.GetEnableRetryAfterHeader(),
	}
	switch c.requestType {
	case "", "both", "internal", "external":
	default:
		return nil, fmt.Errorf("request_type: %q is not one of internal, external, both", c.requestType)
	}
	if t := pb.GetTimeout(); t != nil {
		c.timeout = t.AsDuration()
		if c.timeout <= 0 {
			return nil, errors.New("timeout: must be positive")
		}
	}
	if c.authority == "" {
		c.authority = c.cluster
	}
	if s := pb.GetRateLimitedStatus(); s != nil {
		if s.GetCode() < 400 {
			return nil, fmt.Errorf("rate_limited_status.code: %d is below 400", s.GetCode())
		}
		c.limitedStatus = int(s.GetCode())
	}
	if s := pb.GetStatusOnError(); s != nil {
		if s.GetCode() < 400 {
			return nil, fmt.Errorf("status_on_error.code: %d is below 400", s.GetCode())
		}
		c.errorStatus = int(s.GetCode())
	}
	var err error
	if c.responseHeaders, err = headers.CompileOptions(pb.GetResponseHeadersToAdd(), "response_headers_to_add"); err != nil {
		return nil, err
	}
	if fe := pb.GetFilterEnabled(); fe != nil {
		p, err := matcher.CompileRuntimePercent(fe)
		if err != nil {
			return nil, fmt.Errorf("filter_enabled.%w", err)
		}
		c.enabled = &p
	}
	if fe := pb.GetFilterEnforced(); fe != nil {
		p, err := matcher.CompileRuntimePercent(fe)
		if err != nil {
			return nil, fmt.Errorf("filter_enforced.%w", err)
		}
		c.enforced = &p
	}
	if pb.GetFailureModeDenyPercent() != nil {
		return nil, errors.New("failure_mode_deny_percent: not supported; use failure_mode_deny")
	}
	if len(pb.GetRateLimits()) > 0 {
		if c.rateLimits, err = compileRateLimits(pb.GetRateLimits(), "rate_limits"); err != nil {
			return nil, err
		}
		c.ownLimits = true
	}
	return c, nil
}

func compileRoute(pb *rlv3.RateLimitPerRoute) (*routeConfig, error) {
	if pb.GetOverrideOption() != rlv3.RateLimitPerRoute_DEFAULT {
		return nil, errors.New("override_option: only DEFAULT is supported")
	}
	c := &routeConfig{vhOption: int32(pb.GetVhRateLimits()), domain: pb.GetDomain()}
	if len(pb.GetRateLimits()) > 0 {
		var err error
		if c.rateLimits, err = compileRateLimits(pb.GetRateLimits(), "rate_limits"); err != nil {
			return nil, err
		}
		c.ownLimits = true
	}
	return c, nil
}
