package translate

import (
	"net/http"
	"strconv"
	"strings"
	"sync"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	previousprioritiesv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/api/networking/v1alpha3"
)

// defaultRetryOn is the retry condition istiod sets when a route has no
// retries block (MeshConfig defaultHttpRetryPolicy unset).
const defaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"

func previousHostsPredicate() []*routev3.RetryPolicy_RetryHostPredicate {
	return []*routev3.RetryPolicy_RetryHostPredicate{{
		Name:       "envoy.retry_host_predicates.previous_hosts",
		ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: mustAny(&previoushostsv3.PreviousHostsPredicate{})},
	}}
}

// translateRetries follows istiod's retry.ConvertPolicy
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRetry):
// no retries block gives 2 retries on connect-failure, refused-stream,
// unavailable, cancelled and retriable-status-codes, avoiding the hosts
// already tried (unless the route hashes to a host); attempts 0 disables
// retries; status codes in retryOn become retriable_status_codes.
func translateRetries(in *v1alpha3.HTTPRetry, consistentHash bool) *routev3.RetryPolicy {
	if in == nil {
		if consistentHash {
			return defaultRetries()[1]
		}
		return defaultRetries()[0]
	}
	return retryPolicy(in, consistentHash)
}

// defaultRetries are the policies of a route without a retries block,
// without and with consistent hashing. Every such route shares one (10,000
// routes held 10,000 copies, 4.5 MiB); nothing changes a policy once
// translated, and protobuf messages marshal concurrently.
var defaultRetries = sync.OnceValue(func() [2]*routev3.RetryPolicy {
	return [2]*routev3.RetryPolicy{retryPolicy(nil, false), retryPolicy(nil, true)}
})

func retryPolicy(in *v1alpha3.HTTPRetry, consistentHash bool) *routev3.RetryPolicy {
	out := &routev3.RetryPolicy{
		NumRetries:                    wrapperspb.UInt32(2),
		RetryOn:                       defaultRetryOn,
		HostSelectionRetryMaxAttempts: 5,
	}
	if !consistentHash {
		out.RetryHostPredicate = previousHostsPredicate()
	}
	if in == nil {
		return out
	}
	if in.Attempts <= 0 {
		return nil
	}
	out.NumRetries = wrapperspb.UInt32(uint32(in.Attempts))
	if in.RetryOn != "" {
		var conds []string
		for _, part := range strings.Split(in.RetryOn, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if code, err := strconv.Atoi(part); err == nil && http.StatusText(code) != "" {
				out.RetriableStatusCodes = append(out.RetriableStatusCodes, uint32(code))
			} else {
				conds = append(conds, part)
			}
		}
		out.RetryOn = strings.Join(conds, ",")
		if len(out.RetriableStatusCodes) > 0 && !strings.Contains(out.RetryOn, "retriable-status-codes") {
			out.RetryOn += ",retriable-status-codes"
		}
	}
	if in.PerTryTimeout != nil {
		out.PerTryTimeout = in.PerTryTimeout
	}
	if in.RetryIgnorePreviousHosts != nil {
		out.RetryHostPredicate = nil
		if in.RetryIgnorePreviousHosts.GetValue() {
			out.RetryHostPredicate = previousHostsPredicate()
		}
	}
	if in.RetryRemoteLocalities.GetValue() {
		out.RetryPriority = &routev3.RetryPolicy_RetryPriority{
			Name: "envoy.retry_priorities.previous_priorities",
			ConfigType: &routev3.RetryPolicy_RetryPriority_TypedConfig{
				TypedConfig: mustAny(&previousprioritiesv3.PreviousPrioritiesConfig{UpdateFrequency: 2}),
			},
		}
	}
	if in.Backoff != nil {
		out.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: in.Backoff}
	}
	return out
}
