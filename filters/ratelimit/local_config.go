package ratelimit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters/headers"
	"github.com/waygate/waygate/filters/matcher"
)

// LocalConfig is a compiled LocalRateLimit: the listener's, or a route's
// from typed_per_filter_config. It owns its token buckets, so every
// stream and every connection that uses the config shares them (unless
// local_rate_limit_per_downstream_connection).
type LocalConfig struct {
	statPrefix string
	status     int
	// bucket is the default token bucket, nil when token_bucket is unset.
	bucket *bucket
	// enabled and enforced are nil when unset: Envoy then neither
	// enables nor enforces the limit.
	enabled, enforced  *matcher.Percent
	notEnforcedHeaders headers.Options
	responseHeaders    headers.Options
	descriptors        []*localDescriptor
	stage              uint32
	perConnection      bool
	xRateLimitHeaders  bool
	vhOption           int32
	consumeDefault     bool
	resourceExhausted  bool
	retryAfter         bool
	// rateLimits, when set, replace the route's rate_limits.
	rateLimits []rateLimit
	ownLimits  bool
	// connBuckets holds per-connection buckets.
	connBuckets *lru
	connSpec    *bucketSpec
	// key identifies the config's content, so that a route config
	// compiled again from the same proto (every route table push
	// compiles all of them) keeps counting in the same buckets.
	key string
}

// localDescriptor is a LocalRateLimitDescriptor. Entries with an empty
// value are wildcards: each distinct request value gets its own bucket,
// kept in an LRU of max_dynamic_descriptors.
type localDescriptor struct {
	entries  []Entry
	wildcard bool
	spec     *bucketSpec
	bucket   *bucket
	dynamic  *lru
	shadow   bool
}

// minFillInterval is Envoy's floor for a local token bucket.
const minFillInterval = 50 * time.Millisecond

func compileBucket(tb *typev3.TokenBucket, field string, epoch time.Time) (*bucketSpec, error) {
	if tb.GetMaxTokens() == 0 {
		return nil, fmt.Errorf("%s.max_tokens: must be greater than 0", field)
	}
	per := tb.GetMaxTokens()
	if tb.GetTokensPerFill() != nil {
		per = tb.GetTokensPerFill().GetValue()
		if per == 0 {
			return nil, fmt.Errorf("%s.tokens_per_fill: must be greater than 0", field)
		}
	}
	if tb.GetFillInterval() == nil {
		return nil, fmt.Errorf("%s.fill_interval: must be set", field)
	}
	iv := tb.GetFillInterval().AsDuration()
	if iv < minFillInterval {
		return nil, fmt.Errorf("%s.fill_interval: %v is below the minimum of %v", field, iv, minFillInterval)
	}
	return &bucketSpec{max: tb.GetMaxTokens(), perFill: per, interval: iv, epoch: epoch}, nil
}

// CompileLocal compiles a LocalRateLimit (listener or per-route).
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/local_rate_limit_filter
func CompileLocal(pb *localv3.LocalRateLimit) (*LocalConfig, error) {
	if pb.GetStatPrefix() == "" {
		return nil, errors.New("stat_prefix: must not be empty")
	}
	if pb.GetStage() > 10 {
		return nil, fmt.Errorf("stage: %d is above 10", pb.GetStage())
	}
	if pb.GetLocalClusterRateLimit() != nil {
		return nil, errors.New("local_cluster_rate_limit: not supported; use a global limit through the ratelimit filter to share one limit between gateways")
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(pb)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	epoch := time.Now()
	c := &LocalConfig{
		key:               string(sum[:]),
		statPrefix:        pb.GetStatPrefix(),
		status:            429,
		stage:             pb.GetStage(),
		perConnection:     pb.GetLocalRateLimitPerDownstreamConnection(),
		xRateLimitHeaders: pb.GetEnableXRatelimitHeaders() == ratelimitv3.XRateLimitHeadersRFCVersion_DRAFT_VERSION_03,
		vhOption:          int32(pb.GetVhRateLimits()),
		consumeDefault:    pb.GetAlwaysConsumeDefaultTokenBucket() == nil || pb.GetAlwaysConsumeDefaultTokenBucket().GetValue(),
		resourceExhausted: pb.GetRateLimitedAsResourceExhausted(),
		retryAfter:        pb.GetEnableRetryAfterHeader(),
	}
	if s := pb.GetStatus(); s != nil {
		if s.GetCode() < 400 || s.GetCode() > 599 {
			return nil, fmt.Errorf("status.code: %d is not an HTTP error status (400-599)", s.GetCode())
		}
		c.status = int(s.GetCode())
	}
	if tb := pb.GetTokenBucket(); tb != nil {
		spec, err := compileBucket(tb, "token_bucket", epoch)
		if err != nil {
			return nil, err
		}
		if c.perConnection {
			c.connSpec = spec
		} else {
			c.bucket = newBucket(spec)
		}
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
	if c.notEnforcedHeaders, err = headers.CompileOptions(pb.GetRequestHeadersToAddWhenNotEnforced(), "request_headers_to_add_when_not_enforced"); err != nil {
		return nil, err
	}
	if c.responseHeaders, err = headers.CompileOptions(pb.GetResponseHeadersToAdd(), "response_headers_to_add"); err != nil {
		return nil, err
	}
	maxDynamic := 20
	if m := pb.GetMaxDynamicDescriptors(); m != nil {
		if m.GetValue() == 0 {
			return nil, errors.New("max_dynamic_descriptors: must be at least 1")
		}
		maxDynamic = int(m.GetValue())
	}
	for i, d := range pb.GetDescriptors() {
		field := fmt.Sprintf("descriptors[%d]", i)
		if len(d.GetEntries()) == 0 {
			return nil, fmt.Errorf("%s.entries: at least one entry is required", field)
		}
		if d.GetTokenBucket() == nil {
			return nil, fmt.Errorf("%s.token_bucket: must be set", field)
		}
		spec, err := compileBucket(d.GetTokenBucket(), field+".token_bucket", epoch)
		if err != nil {
			return nil, err
		}
		ld := &localDescriptor{spec: spec, shadow: d.GetShadowMode()}
		for j, e := range d.GetEntries() {
			if e.GetKey() == "" {
				return nil, fmt.Errorf("%s.entries[%d].key: must not be empty", field, j)
			}
			ld.entries = append(ld.entries, Entry{Key: e.GetKey(), Value: e.GetValue()})
			if e.GetValue() == "" {
				ld.wildcard = true
			}
		}
		switch {
		case ld.wildcard && c.perConnection:
			return nil, fmt.Errorf("%s.entries: wildcard (empty) values do not work with local_rate_limit_per_downstream_connection", field)
		case ld.wildcard:
			ld.dynamic = newLRU(maxDynamic)
		case !c.perConnection:
			ld.bucket = newBucket(spec)
		}
		c.descriptors = append(c.descriptors, ld)
	}
	// Envoy tries the most restrictive bucket first.
	sort.SliceStable(c.descriptors, func(i, j int) bool {
		return c.descriptors[i].spec.fillRate() < c.descriptors[j].spec.fillRate()
	})
	if c.perConnection {
		c.connBuckets = newLRU(maxConnBuckets)
	}
	if len(pb.GetRateLimits()) > 0 {
		if c.rateLimits, err = compileRateLimits(pb.GetRateLimits(), "rate_limits"); err != nil {
			return nil, err
		}
		c.ownLimits = true
	}
	return c, nil
}

// maxConnBuckets bounds the per-connection buckets kept: a connection's
// buckets are keyed by its addresses and dropped least recently used,
// since a filter does not see connections close.
const maxConnBuckets = 16384

// match reports whether request descriptor d selects ld: the same keys
// in the same order, and the same values where ld has one.
func (ld *localDescriptor) match(d Descriptor) bool {
	if len(d) != len(ld.entries) {
		return false
	}
	for i, e := range ld.entries {
		if d[i].Key != e.Key || e.Value != "" && d[i].Value != e.Value {
			return false
		}
	}
	return true
}

// bucketFor returns the bucket of d under ld, creating the dynamic one
// of a wildcard descriptor.
func (ld *localDescriptor) bucketFor(d Descriptor) *bucket {
	if !ld.wildcard {
		return ld.bucket
	}
	return ld.dynamic.get(descriptorKey(d), ld.spec)
}

func descriptorKey(d Descriptor) string {
	n := 0
	for _, e := range d {
		n += len(e.Key) + len(e.Value) + 2
	}
	b := make([]byte, 0, n)
	for _, e := range d {
		b = append(b, e.Key...)
		b = append(b, 0)
		b = append(b, e.Value...)
		b = append(b, 0)
	}
	return string(b)
}
