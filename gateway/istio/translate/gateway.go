package translate

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"istio.io/api/networking/v1alpha3"

	"github.com/waygate/waygate/gateway/istio"
)

// gatewayServer is one server of a Gateway that applies to the proxy.
type gatewayServer struct {
	gateway istio.Key
	// name is "namespace/name", the form VirtualService gateways use.
	name   string
	server *v1alpha3.Server
	// field is the path of the server in its Gateway, for warnings.
	field string
}

// portServers are the servers sharing one listener port.
type portServers struct {
	port uint32
	// bind is the address the servers' bind asks for, "" for every
	// address (0.0.0.0).
	bind string
	// http is true when the port serves plain HTTP: all its servers share
	// the route configuration "http.<port>".
	http    bool
	servers []*gatewayServer
}

// mergedGateway is every Gateway server of the proxy grouped by port, as
// istiod's MergeGateways groups them
// (https://istio.io/latest/docs/reference/config/networking/gateway/).
type mergedGateway struct {
	ports []*portServers
}

// protocolIsHTTP reports whether an Istio port protocol is served by the
// HTTP connection manager without TLS.
func protocolIsHTTP(p string) bool {
	switch strings.ToUpper(p) {
	case "HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY":
		return true
	}
	return false
}

// mergeGateways selects the Gateways whose selector matches the proxy
// labels and groups their servers by port. A port serves either plain
// HTTP or TLS/TCP servers: the first Gateway (oldest, then by name) to
// claim a port fixes its kind and later servers of the other kind are
// dropped with a warning, as istiod rejects them.
func (t *translator) mergeGateways() *mergedGateway {
	var gws []*gatewayRef
	for _, g := range t.cfg.Gateways {
		if g == nil {
			continue
		}
		if !labelsSubset(g.Spec.Selector, t.proxy.Labels) {
			continue
		}
		gws = append(gws, &gatewayRef{
			key:  istio.Key{Kind: "Gateway", Namespace: g.Namespace, Name: g.Name},
			spec: &g.Spec,
			time: g.CreationTimestamp.UnixNano(),
		})
	}
	slices.SortStableFunc(gws, func(a, b *gatewayRef) int {
		return cmp.Or(cmp.Compare(a.time, b.time), cmp.Compare(a.key.Name, b.key.Name), cmp.Compare(a.key.Namespace, b.key.Namespace))
	})

	type listenKey struct {
		bind string
		port uint32
	}
	byPort := map[listenKey]*portServers{}
	m := &mergedGateway{}
	for _, g := range gws {
		for i, s := range g.spec.Servers {
			field := "spec.servers[" + strconv.Itoa(i) + "]"
			if s.GetPort() == nil || s.Port.Number == 0 {
				t.warn(g.key, field+".port", "server has no port; it is left out")
				continue
			}
			bind := s.Bind
			if bind == "0.0.0.0" {
				bind = "" // every address, as with no bind
			}
			if bind != "" {
				// An IP address; a Unix socket (unix://) has no port to
				// listen on here.
				if _, err := netip.ParseAddr(bind); err != nil {
					t.warn(g.key, field+".bind", "%q is not an IP address; only IP binds are supported, the server is left out", bind)
					continue
				}
			}
			gs := &gatewayServer{gateway: g.key, name: g.key.Namespace + "/" + g.key.Name, server: s, field: field}
			isHTTP := protocolIsHTTP(s.Port.Protocol)
			key := listenKey{bind, s.Port.Number}
			ps := byPort[key]
			if ps == nil {
				ps = &portServers{port: s.Port.Number, bind: bind, http: isHTTP}
				byPort[key] = ps
				m.ports = append(m.ports, ps)
			} else if ps.http != isHTTP {
				t.warn(g.key, field+".port", "port %d already serves %s; a server of protocol %s cannot share it",
					s.Port.Number, portKind(ps.http), s.Port.Protocol)
				continue
			} else if !isHTTP && s.Tls == nil && strings.EqualFold(s.Port.Protocol, "TCP") {
				t.warn(g.key, field+".port", "port %d already has a server; a plain TCP server cannot share it", s.Port.Number)
				continue
			}
			ps.servers = append(ps.servers, gs)
		}
	}
	slices.SortFunc(m.ports, func(a, b *portServers) int { return cmp.Or(cmp.Compare(a.port, b.port), cmp.Compare(a.bind, b.bind)) })
	return m
}

type gatewayRef struct {
	key  istio.Key
	spec *v1alpha3.Gateway
	time int64
}

func portKind(http bool) string {
	if http {
		return "plain HTTP"
	}
	return "TLS or TCP"
}

// isTLSTerminatedHTTPS reports whether s is an HTTPS server the gateway
// terminates: its traffic goes through the HTTP connection manager.
func isTLSTerminatedHTTPS(s *v1alpha3.Server) bool {
	return strings.EqualFold(s.GetPort().GetProtocol(), "HTTPS") && s.GetTls() != nil && !isPassthrough(s)
}

func isPassthrough(s *v1alpha3.Server) bool {
	m := s.GetTls().GetMode()
	return s.GetTls() != nil && (m == v1alpha3.ServerTLSSettings_PASSTHROUGH || m == v1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH)
}

// httpsRouteName is the RDS name istiod gives a terminated HTTPS server:
// https.<port>.<portName>.<gateway>.<namespace>.
func httpsRouteName(gs *gatewayServer) string {
	return "https." + strconv.Itoa(int(gs.server.Port.Number)) + "." + gs.server.Port.Name + "." +
		gs.gateway.Name + "." + gs.gateway.Namespace
}

// sniHosts are the SNI names a TLS server's filter chain matches: its
// hosts without namespace, sorted; none when a host is "*", which
// matches every name.
func sniHosts(s *v1alpha3.Server) []string {
	var out []string
	for _, h := range s.Hosts {
		h = stripNamespace(h)
		if h == "*" {
			return nil
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}
