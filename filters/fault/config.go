package fault

import (
	"fmt"
	"github.com/waygate/waygate/filters/matcher"
	"time"

	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
)

// Config is a compiled HTTPFault: the listener-level settings of a
// Factory, or a route's override found through Route.PerFilterConfig.
// It is immutable and shared by every stream.
type Config struct {
	delay     *delayConfig
	abort     *abortConfig
	rateLimit *rateLimitConfig

	upstreamCluster string
	headers         []matcher.Header
	downstreamNodes map[string]struct{}
	// maxActive is max_active_faults, or -1 for no limit.
	maxActive int64

	downstreamClusterStats bool
	metadata               map[string]any
}

type delayConfig struct {
	fixed      time.Duration
	fromHeader bool
	pct        percent
}

type abortConfig struct {
	httpStatus int
	grpcStatus int // -1 when the abort is not a gRPC one
	fromHeader bool
	pct        percent
	body       string
}

type rateLimitConfig struct {
	kbps       uint64
	fromHeader bool
	pct        percent
}

// defaultAbortBody is what Envoy answers an aborted request with when
// FaultAbort.response_body is empty.
const defaultAbortBody = "fault filter abort"

// Compile validates an HTTPFault and compiles it. Errors name the field
// path and what would be valid.
func Compile(pb *faultv3.HTTPFault) (*Config, error) {
	c := &Config{
		upstreamCluster:        pb.GetUpstreamCluster(),
		maxActive:              -1,
		downstreamClusterStats: !pb.GetDisableDownstreamClusterStats(),
	}
	var err error
	if d := pb.GetDelay(); d != nil {
		if c.delay, err = compileDelay(d); err != nil {
			return nil, fmt.Errorf("delay.%w", err)
		}
	}
	if a := pb.GetAbort(); a != nil {
		if c.abort, err = compileAbort(a); err != nil {
			return nil, fmt.Errorf("abort.%w", err)
		}
	}
	if r := pb.GetResponseRateLimit(); r != nil {
		if c.rateLimit, err = compileRateLimit(r); err != nil {
			return nil, fmt.Errorf("response_rate_limit.%w", err)
		}
	}
	for i, h := range pb.GetHeaders() {
		m, err := compileHeaderMatch(h)
		if err != nil {
			return nil, fmt.Errorf("headers[%d].%w", i, err)
		}
		c.headers = append(c.headers, m)
	}
	if nodes := pb.GetDownstreamNodes(); len(nodes) > 0 {
		c.downstreamNodes = make(map[string]struct{}, len(nodes))
		for _, n := range nodes {
			c.downstreamNodes[n] = struct{}{}
		}
	}
	if m := pb.GetMaxActiveFaults(); m != nil {
		c.maxActive = int64(m.GetValue())
	}
	if md := pb.GetFilterMetadata(); md != nil {
		c.metadata = md.AsMap()
	}
	return c, nil
}

func compileDelay(d *commonfaultv3.FaultDelay) (*delayConfig, error) {
	pct, err := compilePercent(d.GetPercentage())
	if err != nil {
		return nil, fmt.Errorf("percentage.%w", err)
	}
	c := &delayConfig{pct: pct}
	switch s := d.GetFaultDelaySecifier().(type) {
	case *commonfaultv3.FaultDelay_FixedDelay:
		if err := s.FixedDelay.CheckValid(); err != nil {
			return nil, fmt.Errorf("fixed_delay: %v", err)
		}
		c.fixed = s.FixedDelay.AsDuration()
		if c.fixed <= 0 {
			return nil, fmt.Errorf("fixed_delay: %v must be greater than 0", c.fixed)
		}
	case *commonfaultv3.FaultDelay_HeaderDelay_:
		c.fromHeader = true
	default:
		return nil, fmt.Errorf("fault_delay_secifier: one of fixed_delay or header_delay is required")
	}
	return c, nil
}

func compileAbort(a *faultv3.FaultAbort) (*abortConfig, error) {
	pct, err := compilePercent(a.GetPercentage())
	if err != nil {
		return nil, fmt.Errorf("percentage.%w", err)
	}
	c := &abortConfig{pct: pct, grpcStatus: -1, body: a.GetResponseBody()}
	if c.body == "" {
		c.body = defaultAbortBody
	}
	switch s := a.GetErrorType().(type) {
	case *faultv3.FaultAbort_HttpStatus:
		if s.HttpStatus < 200 || s.HttpStatus >= 600 {
			return nil, fmt.Errorf("http_status: %d is not in [200, 600)", s.HttpStatus)
		}
		c.httpStatus = int(s.HttpStatus)
	case *faultv3.FaultAbort_GrpcStatus:
		c.grpcStatus = int(s.GrpcStatus)
	case *faultv3.FaultAbort_HeaderAbort_:
		c.fromHeader = true
	default:
		return nil, fmt.Errorf("error_type: one of http_status, grpc_status or header_abort is required")
	}
	return c, nil
}

func compileRateLimit(r *commonfaultv3.FaultRateLimit) (*rateLimitConfig, error) {
	pct, err := compilePercent(r.GetPercentage())
	if err != nil {
		return nil, fmt.Errorf("percentage.%w", err)
	}
	c := &rateLimitConfig{pct: pct}
	switch s := r.GetLimitType().(type) {
	case *commonfaultv3.FaultRateLimit_FixedLimit_:
		if s.FixedLimit.GetLimitKbps() < 1 {
			return nil, fmt.Errorf("fixed_limit.limit_kbps: must be at least 1")
		}
		c.kbps = s.FixedLimit.GetLimitKbps()
	case *commonfaultv3.FaultRateLimit_HeaderLimit_:
		c.fromHeader = true
	default:
		return nil, fmt.Errorf("limit_type: one of fixed_limit or header_limit is required")
	}
	return c, nil
}

// empty reports whether the config injects nothing, like the bare
// HTTPFault istiod puts in every gateway filter chain.
func (c *Config) empty() bool {
	return c.delay == nil && c.abort == nil && c.rateLimit == nil
}
