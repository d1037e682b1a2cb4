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
	Metadata *corev3.Metadata
}

// compileAssignment turns a ClusterLoadAssignment into endpoints. path
// prefixes error messages.
func compileAssignment(cla *endpointv3.ClusterLoadAssignment, path string) ([]*Endpoint, error) {
	if cla == nil {
		return nil, nil
	}
	var out []*Endpoint
	for i, le := range cla.GetEndpoints() {
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
				Address:  addr,
				Weight:   w,
				Healthy:  hs == corev3.HealthStatus_UNKNOWN || hs == corev3.HealthStatus_HEALTHY || hs == corev3.HealthStatus_DEGRADED,
				Priority: le.GetPriority(),
				Locality: le.GetLocality(),
				Metadata: lb.GetMetadata(),
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
