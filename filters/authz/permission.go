package authz

import (
	"fmt"
	"net/netip"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/waygate/waygate/filters"
)

// matcher is one compiled node of a permission or principal tree. Both
// trees share the node types that read the same request attribute.
type matcher interface {
	match(x *filters.Exchange) bool
}

type anyMatch struct{}

func (anyMatch) match(*filters.Exchange) bool { return true }

type andMatch []matcher

func (a andMatch) match(x *filters.Exchange) bool {
	for _, m := range a {
		if !m.match(x) {
			return false
		}
	}
	return true
}

type orMatch []matcher

func (o orMatch) match(x *filters.Exchange) bool {
	for _, m := range o {
		if m.match(x) {
			return true
		}
	}
	return false
}

type notMatch struct{ m matcher }

func (n notMatch) match(x *filters.Exchange) bool { return !n.m.match(x) }

type headerNode struct{ h *headerMatch }

func (n headerNode) match(x *filters.Exchange) bool { return n.h.match(&x.Request) }

// pathNode is url_path: the PathMatcher sees the path without its query
// string and fragment, as Envoy's PathMatcher does.
type pathNode struct{ s stringMatch }

func (n *pathNode) match(x *filters.Exchange) bool {
	return n.s.match(pathOnly(x.Request.Path))
}

// pathOnly cuts the query string and fragment off a request path. A
// plain loop: paths are short and strings.IndexAny costs more than the
// scan here.
func pathOnly(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' || p[i] == '#' {
			return p[:i]
		}
	}
	return p
}

type destIPNode struct{ p netip.Prefix }

func (n destIPNode) match(x *filters.Exchange) bool { return inPrefix(n.p, x.Downstream.LocalAddr) }

type destPortNode struct{ lo, hi uint32 } // [lo, hi)

func (n destPortNode) match(x *filters.Exchange) bool {
	p := uint32(x.Downstream.LocalAddr.Port())
	return p >= n.lo && p < n.hi
}

// sniNode is requested_server_name: the SNI of the downstream TLS
// handshake, the empty string on plaintext connections.
type sniNode struct{ s stringMatch }

func (n *sniNode) match(x *filters.Exchange) bool {
	sni := ""
	if x.Downstream.TLS != nil {
		sni = x.Downstream.TLS.ServerName
	}
	return n.s.match(sni)
}

type metadataNode struct{ m *metadataMatch }

func (n metadataNode) match(x *filters.Exchange) bool { return n.m.match(x) }

// compilePermission compiles an envoy.config.rbac.v3.Permission.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/rbac/v3/rbac.proto#config-rbac-v3-permission
func compilePermission(p *rbacv3.Permission) (matcher, error) {
	switch r := p.GetRule().(type) {
	case *rbacv3.Permission_Any:
		if !r.Any {
			return nil, fmt.Errorf("any: must be true when set")
		}
		return anyMatch{}, nil
	case *rbacv3.Permission_AndRules:
		out := make(andMatch, 0, len(r.AndRules.GetRules()))
		for i, sub := range r.AndRules.GetRules() {
			m, err := compilePermission(sub)
			if err != nil {
				return nil, fmt.Errorf("and_rules.rules[%d].%w", i, err)
			}
			out = append(out, m)
		}
		return out, nil
	case *rbacv3.Permission_OrRules:
		out := make(orMatch, 0, len(r.OrRules.GetRules()))
		for i, sub := range r.OrRules.GetRules() {
			m, err := compilePermission(sub)
			if err != nil {
				return nil, fmt.Errorf("or_rules.rules[%d].%w", i, err)
			}
			out = append(out, m)
		}
		return out, nil
	case *rbacv3.Permission_NotRule:
		m, err := compilePermission(r.NotRule)
		if err != nil {
			return nil, fmt.Errorf("not_rule.%w", err)
		}
		return notMatch{m}, nil
	case *rbacv3.Permission_Header:
		h, err := compileHeaderMatch(r.Header)
		if err != nil {
			return nil, fmt.Errorf("header.%w", err)
		}
		return headerNode{h}, nil
	case *rbacv3.Permission_UrlPath:
		n, err := compilePath(r.UrlPath)
		if err != nil {
			return nil, fmt.Errorf("url_path.%w", err)
		}
		return n, nil
	case *rbacv3.Permission_DestinationIp:
		pfx, err := compileCIDR(r.DestinationIp)
		if err != nil {
			return nil, fmt.Errorf("destination_ip.%w", err)
		}
		return destIPNode{pfx}, nil
	case *rbacv3.Permission_DestinationPort:
		if r.DestinationPort > 65535 {
			return nil, fmt.Errorf("destination_port: %d is not a port (0..65535)", r.DestinationPort)
		}
		return destPortNode{r.DestinationPort, r.DestinationPort + 1}, nil
	case *rbacv3.Permission_DestinationPortRange:
		lo, hi := r.DestinationPortRange.GetStart(), r.DestinationPortRange.GetEnd()
		if lo < 0 || hi > 65536 || lo >= hi {
			return nil, fmt.Errorf("destination_port_range: [%d, %d) is not a port range within [0, 65536)", lo, hi)
		}
		return destPortNode{uint32(lo), uint32(hi)}, nil
	case *rbacv3.Permission_RequestedServerName:
		s, err := compileStringMatch(r.RequestedServerName)
		if err != nil {
			return nil, fmt.Errorf("requested_server_name.%w", err)
		}
		return &sniNode{s}, nil
	case *rbacv3.Permission_Metadata:
		m, err := compileMetadataMatch(r.Metadata)
		if err != nil {
			return nil, fmt.Errorf("metadata.%w", err)
		}
		return metadataNode{m}, nil
	case *rbacv3.Permission_SourcedMetadata:
		if r.SourcedMetadata.GetMetadataSource() != rbacv3.MetadataSource_DYNAMIC {
			return nil, fmt.Errorf("sourced_metadata.metadata_source: only DYNAMIC is supported; route metadata is not visible to filters")
		}
		m, err := compileMetadataMatch(r.SourcedMetadata.GetMetadataMatcher())
		if err != nil {
			return nil, fmt.Errorf("sourced_metadata.metadata_matcher.%w", err)
		}
		return metadataNode{m}, nil
	case *rbacv3.Permission_Matcher:
		return nil, fmt.Errorf("matcher: extension %q is not supported; use header, url_path, destination_port or metadata", r.Matcher.GetName())
	case *rbacv3.Permission_UriTemplate:
		return nil, fmt.Errorf("uri_template: not supported; use url_path with a safe_regex")
	}
	return nil, fmt.Errorf("rule: one of any, header, url_path, and_rules, or_rules, not_rule, destination_ip, destination_port, destination_port_range, requested_server_name or metadata is required")
}

func compilePath(p *matcherv3.PathMatcher) (*pathNode, error) {
	sm := p.GetPath()
	if sm == nil {
		return nil, fmt.Errorf("path: required")
	}
	s, err := compileStringMatch(sm)
	if err != nil {
		return nil, fmt.Errorf("path.%w", err)
	}
	return &pathNode{s}, nil
}
