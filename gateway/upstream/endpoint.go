package upstream

import (
	"fmt"
	"net"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// Endpoint is one upstream host of a cluster.
type Endpoint struct {
	// Address is host:port, dialable as is.
	Address string
	// Weight is the load balancing weight (1 when unset).
	Weight uint32
	// Healthy is false when EDS marked the host unhealthy, draining or
	// timed out.
	Healthy  bool
	Priority uint32
	Locality *corev3.Locality
	// LocalityWeight is the load_balancing_weight of the endpoint's
	// locality, used when the cluster sets locality_weighted_lb_config
	// (0 when the locality has none: Envoy then sends it no traffic).
	LocalityWeight uint32
	Metadata       *corev3.Metadata

	// host is the address's state shared across snapshots; nil until
	// the Manager binds the endpoint.
	host *host
}

// ActiveRequests is the number of requests in flight to the endpoint's
// address, across snapshots.
func (e *Endpoint) ActiveRequests() int64 {
	if e.host == nil {
		return 0
	}
	return e.host.active.Load()
}

// FailedActiveHealthCheck says whether active health checking holds
// the endpoint out (Envoy's failed_active_hc health flag), including a
// new endpoint waiting for its first check.
func (e *Endpoint) FailedActiveHealthCheck() bool { return e.host != nil && e.host.hcFailed.Load() }

// FailedOutlierCheck says whether outlier detection ejected the
// endpoint (Envoy's failed_outlier_check health flag).
func (e *Endpoint) FailedOutlierCheck() bool { return e.host != nil && e.host.ejected.Load() }

// Available says whether the endpoint may take traffic outside panic
// mode: EDS did not mark it unhealthy, active health checking did not
// fail it and outlier detection did not eject it.
func (e *Endpoint) Available() bool {
	return e.Healthy && (e.host == nil || e.host.available())
}

// defaultOverprovisioning is Envoy's overprovisioning factor (1.4, in
// percent): a priority level or locality with 72% healthy hosts is still
// treated as fully available.
const defaultOverprovisioning = 140

// overprovisioningOf reads policy.overprovisioning_factor.
func overprovisioningOf(cla *endpointv3.ClusterLoadAssignment) uint32 {
	if f := cla.GetPolicy().GetOverprovisioningFactor(); f != nil {
		return f.GetValue()
	}
	return defaultOverprovisioning
}

// compileAssignment turns a ClusterLoadAssignment into endpoints. path
// prefixes error messages.
func compileAssignment(cla *endpointv3.ClusterLoadAssignment, path string) ([]*Endpoint, error) {
	if cla == nil {
		return nil, nil
	}
	var out []*Endpoint
	for i, le := range cla.GetEndpoints() {
		lw := le.GetLoadBalancingWeight().GetValue()
		for j, lb := range le.GetLbEndpoints() {
			p := fmt.Sprintf("%s.endpoints[%d].lb_endpoints[%d]", path, i, j)
			ep := lb.GetEndpoint()
			if ep == nil {
				return nil, fmt.Errorf("%s: endpoint is required (named endpoints are not supported)", p)
			}
			addr, err := socketAddress(ep.GetAddress(), p+".endpoint.address")
			if err != nil {
				return nil, err
			}
			w := uint32(1)
			if lb.GetLoadBalancingWeight() != nil {
				w = lb.GetLoadBalancingWeight().GetValue()
				if w == 0 {
					return nil, fmt.Errorf("%s.load_balancing_weight: must be at least 1", p)
				}
			}
			hs := lb.GetHealthStatus()
			out = append(out, &Endpoint{
				Address:        addr,
				Weight:         w,
				Healthy:        hs == corev3.HealthStatus_UNKNOWN || hs == corev3.HealthStatus_HEALTHY || hs == corev3.HealthStatus_DEGRADED,
				Priority:       le.GetPriority(),
				Locality:       le.GetLocality(),
				LocalityWeight: lw,
				Metadata:       lb.GetMetadata(),
			})
		}
	}
	return out, nil
}

// socketAddress renders an Envoy address as host:port.
func socketAddress(a *corev3.Address, path string) (string, error) {
	sa := a.GetSocketAddress()
	if sa == nil {
		if p := a.GetPipe(); p != nil {
			return "", fmt.Errorf("%s.pipe: unix socket endpoints are not supported", path)
		}
		return "", fmt.Errorf("%s.socket_address: is required", path)
	}
	if sa.GetAddress() == "" {
		return "", fmt.Errorf("%s.socket_address.address: must not be empty", path)
	}
	port, ok := sa.GetPortSpecifier().(*corev3.SocketAddress_PortValue)
	if !ok {
		return "", fmt.Errorf("%s.socket_address.port_value: is required (named ports are not supported)", path)
	}
	if port.PortValue > 65535 {
		return "", fmt.Errorf("%s.socket_address.port_value: %d is out of range", path, port.PortValue)
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(port.PortValue))), nil
}
