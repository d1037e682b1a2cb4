package authz

import (
	"fmt"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"

	"github.com/waygate/waygate/filters"
)

// authenticatedNode is the authenticated principal: the downstream
// connection is TLS and, when principal_name is set, one of the peer
// certificate's URI SANs, else one of its DNS SANs, else its subject
// matches. An Istio source.principal is a SPIFFE URI SAN.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/rbac/v3/rbac.proto#config-rbac-v3-principal-authenticated
type authenticatedNode struct {
	name *stringMatch // nil: any TLS peer
}

func (n *authenticatedNode) match(x *filters.Exchange) bool {
	cs := x.Downstream.TLS
	if cs == nil {
		return false
	}
	if n.name == nil {
		return true
	}
	if len(cs.PeerCertificates) == 0 {
		return n.name.match("")
	}
	leaf := cs.PeerCertificates[0]
	for _, u := range leaf.URIs {
		if n.name.match(u.String()) {
			return true
		}
	}
	for _, d := range leaf.DNSNames {
		if n.name.match(d) {
			return true
		}
	}
	return n.name.match(leaf.Subject.String())
}

// remoteIPNode matches the downstream client address: remote_ip, the
// address the connection manager derived (from x-forwarded-for with
// xff_num_trusted_hops, istiod's numTrustedProxies).
type remoteIPNode struct{ n destIPNode }

func (r remoteIPNode) match(x *filters.Exchange) bool {
	return inPrefix(r.n.p, x.Downstream.RemoteAddr)
}

// sourceIPNode matches source_ip: the connection's peer after the PROXY
// protocol, whatever x-forwarded-for says.
type sourceIPNode struct{ n destIPNode }

func (r sourceIPNode) match(x *filters.Exchange) bool {
	if a := x.Downstream.SourceAddr; a.IsValid() {
		return inPrefix(r.n.p, a)
	}
	return inPrefix(r.n.p, x.Downstream.RemoteAddr)
}

// directRemoteIPNode matches direct_remote_ip: the socket's peer, a load
// balancer's address behind the PROXY protocol.
type directRemoteIPNode struct{ n destIPNode }

func (r directRemoteIPNode) match(x *filters.Exchange) bool {
	if a := x.Downstream.DirectRemoteAddr; a.IsValid() {
		return inPrefix(r.n.p, a)
	}
	return inPrefix(r.n.p, x.Downstream.RemoteAddr)
}

// compilePrincipal compiles an envoy.config.rbac.v3.Principal.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/rbac/v3/rbac.proto#config-rbac-v3-principal
func compilePrincipal(p *rbacv3.Principal) (matcher, error) {
	switch id := p.GetIdentifier().(type) {
	case *rbacv3.Principal_Any:
		if !id.Any {
			return nil, fmt.Errorf("any: must be true when set")
		}
		return anyMatch{}, nil
	case *rbacv3.Principal_AndIds:
		out := make(andMatch, 0, len(id.AndIds.GetIds()))
		for i, sub := range id.AndIds.GetIds() {
			m, err := compilePrincipal(sub)
			if err != nil {
				return nil, fmt.Errorf("and_ids.ids[%d].%w", i, err)
			}
			out = append(out, m)
		}
		return out, nil
	case *rbacv3.Principal_OrIds:
		out := make(orMatch, 0, len(id.OrIds.GetIds()))
		for i, sub := range id.OrIds.GetIds() {
			m, err := compilePrincipal(sub)
			if err != nil {
				return nil, fmt.Errorf("or_ids.ids[%d].%w", i, err)
			}
			out = append(out, m)
		}
		return out, nil
	case *rbacv3.Principal_NotId:
		m, err := compilePrincipal(id.NotId)
		if err != nil {
			return nil, fmt.Errorf("not_id.%w", err)
		}
		return notMatch{m}, nil
	case *rbacv3.Principal_Authenticated_:
		n := &authenticatedNode{}
		if pn := id.Authenticated.GetPrincipalName(); pn != nil {
			s, err := compileStringMatch(pn)
			if err != nil {
				return nil, fmt.Errorf("authenticated.principal_name.%w", err)
			}
			n.name = &s
		}
		return n, nil
	case *rbacv3.Principal_SourceIp:
		pfx, err := compileCIDR(id.SourceIp)
		if err != nil {
			return nil, fmt.Errorf("source_ip.%w", err)
		}
		return sourceIPNode{destIPNode{pfx}}, nil
	case *rbacv3.Principal_DirectRemoteIp:
		pfx, err := compileCIDR(id.DirectRemoteIp)
		if err != nil {
			return nil, fmt.Errorf("direct_remote_ip.%w", err)
		}
		return directRemoteIPNode{destIPNode{pfx}}, nil
	case *rbacv3.Principal_RemoteIp:
		pfx, err := compileCIDR(id.RemoteIp)
		if err != nil {
			return nil, fmt.Errorf("remote_ip.%w", err)
		}
		return remoteIPNode{destIPNode{pfx}}, nil
	case *rbacv3.Principal_Header:
		h, err := compileHeaderMatch(id.Header)
		if err != nil {
			return nil, fmt.Errorf("header.%w", err)
		}
		return headerNode{h}, nil
	case *rbacv3.Principal_UrlPath:
		n, err := compilePath(id.UrlPath)
		if err != nil {
			return nil, fmt.Errorf("url_path.%w", err)
		}
		return n, nil
	case *rbacv3.Principal_Metadata:
		m, err := compileMetadataMatch(id.Metadata)
		if err != nil {
			return nil, fmt.Errorf("metadata.%w", err)
		}
		return metadataNode{m}, nil
	case *rbacv3.Principal_SourcedMetadata:
		if id.SourcedMetadata.GetMetadataSource() != rbacv3.MetadataSource_DYNAMIC {
			return nil, fmt.Errorf("sourced_metadata.metadata_source: only DYNAMIC is supported; route metadata is not visible to filters")
		}
		m, err := compileMetadataMatch(id.SourcedMetadata.GetMetadataMatcher())
		if err != nil {
			return nil, fmt.Errorf("sourced_metadata.metadata_matcher.%w", err)
		}
		return metadataNode{m}, nil
	case *rbacv3.Principal_FilterState:
		return nil, fmt.Errorf("filter_state: not supported (Waygate keeps no filter state); use authenticated for peer identities")
	case *rbacv3.Principal_Custom:
		return nil, fmt.Errorf("custom: extension %q is not supported", id.Custom.GetName())
	}
	return nil, fmt.Errorf("identifier: one of any, authenticated, direct_remote_ip, remote_ip, source_ip, header, url_path, metadata, and_ids, or_ids or not_id is required")
}
