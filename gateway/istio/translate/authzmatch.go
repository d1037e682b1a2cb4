package translate

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The Envoy matchers an AuthorizationPolicy value turns into, written as
// istiod writes them (pilot/pkg/security/authz/matcher and model) so the
// generated RBAC configs are the same. Istio's value syntax: "*" matches
// any non-empty value, "*x" a suffix, "x*" a prefix, anything else is
// exact.
// https://istio.io/latest/docs/reference/config/security/authorization-policy/

const (
	jwtFilterName    = "envoy.filters.http.jwt_authn"
	jwtPayloadKey    = "payload"
	spiffePrefix     = "spiffe://"
	authorityHeader  = ":authority"
	methodHeaderName = ":method"
)

func exactMatch(v string, ignoreCase bool) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{IgnoreCase: ignoreCase, MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

func prefixMatch(v string, ignoreCase bool) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{IgnoreCase: ignoreCase, MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: v}}
}

func suffixMatch(v string, ignoreCase bool) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{IgnoreCase: ignoreCase, MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: v}}
}

func regexMatch(re string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}}
}

// istioString is Istio's value syntax as a StringMatcher, with prefix
// put before the value ("spiffe://" for principals).
func istioString(v, prefix string) *matcherv3.StringMatcher {
	switch {
	case v == "*":
		return regexMatch(".+")
	case strings.HasPrefix(v, "*"):
		if prefix == "" {
			return suffixMatch(v[1:], false)
		}
		return regexMatch(prefix + ".*" + regexp.QuoteMeta(v[1:]))
	case strings.HasSuffix(v, "*"):
		return prefixMatch(prefix+strings.TrimSuffix(v, "*"), false)
	}
	return exactMatch(prefix+v, false)
}

// istioHeader is a header matcher in Istio's value syntax; hosts compare
// case-insensitively.
func istioHeader(name, v string, ignoreCase bool) *routev3.HeaderMatcher {
	h := &routev3.HeaderMatcher{Name: name}
	var sm *matcherv3.StringMatcher
	switch {
	case v == "*":
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		return h
	case strings.HasPrefix(v, "*"):
		sm = suffixMatch(v[1:], ignoreCase)
	case strings.HasSuffix(v, "*"):
		sm = prefixMatch(v[:len(v)-1], ignoreCase)
	default:
		sm = exactMatch(v, ignoreCase)
	}
	h.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: sm}
	return h
}

// cidrRange parses "10.0.0.1" or "10.0.0.0/16" as istiod's
// AddrStrToCidrRange does.
func cidrRange(v string) (*corev3.CidrRange, error) {
	addr, bits := v, -1
	if i := strings.IndexByte(v, '/'); i >= 0 {
		addr = v[:i]
		n, err := strconv.Atoi(v[i+1:])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("invalid CIDR %q", v)
		}
		bits = n
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("invalid IP address %q", v)
	}
	if bits < 0 {
		bits = ip.BitLen()
	}
	if bits > ip.BitLen() {
		return nil, fmt.Errorf("invalid CIDR %q: prefix longer than the address", v)
	}
	return &corev3.CidrRange{AddressPrefix: addr, PrefixLen: wrapperspb.UInt32(uint32(bits))}, nil
}

func portNumber(v string) (uint32, error) {
	p, err := strconv.ParseUint(v, 10, 32)
	if err != nil || p > 65535 {
		return 0, fmt.Errorf("invalid port %q", v)
	}
	return uint32(p), nil
}

// pathMatch is an Istio path value: "*" syntax, or a path template
// ("/api/{*}/items/{**}"). Templates become an anchored RE2 regex ({*}
// one segment, {**} the rest of the path), which keeps the filter on the
// url_path matcher instead of Envoy's uri_template extension.
func pathMatch(v string) *matcherv3.PathMatcher {
	sm := istioString(v, "")
	if strings.Contains(v, "{*}") || strings.Contains(v, "{**}") {
		var b strings.Builder
		for rest := v; rest != ""; {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				b.WriteString(regexp.QuoteMeta(rest))
				break
			}
			b.WriteString(regexp.QuoteMeta(rest[:i]))
			switch {
			case strings.HasPrefix(rest[i:], "{**}"):
				b.WriteString(".*")
				rest = rest[i+4:]
			case strings.HasPrefix(rest[i:], "{*}"):
				b.WriteString("[^/]+")
				rest = rest[i+3:]
			default:
				b.WriteString(regexp.QuoteMeta("{"))
				rest = rest[i+1:]
			}
		}
		sm = regexMatch(b.String())
	}
	return &matcherv3.PathMatcher{Rule: &matcherv3.PathMatcher_Path{Path: sm}}
}

func metadataPath(keys ...string) []*matcherv3.MetadataMatcher_PathSegment {
	out := make([]*matcherv3.MetadataMatcher_PathSegment, 0, len(keys))
	for _, k := range keys {
		out = append(out, &matcherv3.MetadataMatcher_PathSegment{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: k}})
	}
	return out
}

func stringValue(m *matcherv3.StringMatcher) *matcherv3.ValueMatcher {
	return &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: m}}
}

func orValues(ms []*matcherv3.ValueMatcher) *matcherv3.ValueMatcher {
	if len(ms) == 1 {
		return ms[0]
	}
	return &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_OrMatch{OrMatch: &matcherv3.OrMatcher{ValueMatchers: ms}}}
}

func stringOrValues(vs []string) *matcherv3.ValueMatcher {
	ms := make([]*matcherv3.ValueMatcher, 0, len(vs))
	for _, v := range vs {
		ms = append(ms, stringValue(istioString(v, "")))
	}
	return orValues(ms)
}

// jwtClaimMatch matches a claim the jwt_authn filter wrote under
// payload, whether it is a string or a list of strings.
func jwtClaimMatch(claims []string, v *matcherv3.ValueMatcher) *matcherv3.MetadataMatcher {
	list := &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_ListMatch{ListMatch: &matcherv3.ListMatcher{
		MatchPattern: &matcherv3.ListMatcher_OneOf{OneOf: v},
	}}}
	return &matcherv3.MetadataMatcher{
		Filter: jwtFilterName,
		Path:   metadataPath(append([]string{jwtPayloadKey}, claims...)...),
		Value:  &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_OrMatch{OrMatch: &matcherv3.OrMatcher{ValueMatchers: []*matcherv3.ValueMatcher{list, v}}}},
	}
}

func jwtStringClaim(claim string, m *matcherv3.StringMatcher) *rbacv3.Principal {
	return principalMetadata(&matcherv3.MetadataMatcher{Filter: jwtFilterName, Path: metadataPath(jwtPayloadKey, claim), Value: stringValue(m)})
}

// requestPrincipals is request.auth.principal: "<iss>/<sub>", split at
// the last "/" since issuers are often URLs, each side matched in
// Istio's value syntax.
func requestPrincipals(vs []string) *rbacv3.Principal {
	anyValue := regexMatch(".+")
	var or []*rbacv3.Principal
	for _, v := range vs {
		idx := strings.LastIndex(v, "/")
		found := idx >= 0
		iss, sub := v, ""
		if found {
			iss, sub = v[:idx], v[idx+1:]
		}
		var mi, ms *matcherv3.StringMatcher
		switch {
		case v == "*":
			mi, ms = anyValue, anyValue
		case strings.HasPrefix(v, "*"):
			if found {
				if iss == "*" {
					mi = anyValue
				} else {
					mi = suffixMatch(iss[1:], false)
				}
				ms = exactMatch(sub, false)
			} else {
				mi, ms = anyValue, suffixMatch(v[1:], false)
			}
		case strings.HasSuffix(v, "*"):
			if found {
				mi = exactMatch(iss, false)
				if sub == "*" {
					ms = anyValue
				} else {
					ms = prefixMatch(strings.TrimSuffix(sub, "*"), false)
				}
			} else {
				mi, ms = prefixMatch(strings.TrimSuffix(v, "*"), false), anyValue
			}
		default:
			mi, ms = exactMatch(iss, false), exactMatch(sub, false)
		}
		or = append(or, principalAnd([]*rbacv3.Principal{jwtStringClaim("iss", mi), jwtStringClaim("sub", ms)}))
	}
	if len(or) == 1 {
		return or[0]
	}
	return principalOr(or)
}

// serviceAccountRegex matches the SPIFFE identity of service account
// "<ns>/<sa>" or "<sa>" in the policy's namespace. Names are quoted,
// which changes nothing for valid Kubernetes names.
func serviceAccountRegex(defaultNS, v string) string {
	ns, sa, ok := strings.Cut(v, "/")
	if !ok {
		ns, sa = defaultNS, v
	}
	return fmt.Sprintf("spiffe://.+/ns/%s/(.+/|)sa/%s(/.+)?", regexp.QuoteMeta(ns), regexp.QuoteMeta(sa))
}

func trustDomainMatch(v string) *matcherv3.StringMatcher {
	switch {
	case v == "*":
		return prefixMatch(spiffePrefix, false)
	case !strings.Contains(v, "*"):
		return prefixMatch(spiffePrefix+v+"/", false)
	}
	parts := strings.SplitN(v, "*", 2)
	return regexMatch(regexp.QuoteMeta(spiffePrefix) + regexp.QuoteMeta(parts[0]) + "[^/]*" + regexp.QuoteMeta(parts[1]) + "/.*")
}

// bracketName reads "[name]" after an attribute, as in
// request.headers[x-user].
func bracketName(s string) (string, error) {
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") || len(s) < 3 {
		return "", fmt.Errorf("expecting format [<NAME>], but found %s", s)
	}
	return s[1 : len(s)-1], nil
}

// bracketNames reads "[a][b]" (nested claims) or "[a.b]".
func bracketNames(s string) ([]string, error) {
	var out []string
	for rest := s; rest != ""; {
		if rest[0] != '[' {
			return nil, fmt.Errorf("expecting format [<NAME>], but found %s", s)
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 || strings.IndexByte(rest[1:end], '[') >= 0 {
			n, err := bracketName(s)
			if err != nil {
				return nil, err
			}
			return []string{n}, nil
		}
		if end == 1 {
			return nil, fmt.Errorf("expecting format [<NAME>], but found %s", s)
		}
		out = append(out, rest[1:end])
		rest = rest[end+1:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("expecting format [<NAME>], but found %s", s)
	}
	return out, nil
}

func permissionAny() *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}}
}

func permissionAnd(ps []*rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: ps}}}
}

func permissionOr(ps []*rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: ps}}}
}

func permissionNot(p *rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_NotRule{NotRule: p}}
}

func permissionHeader(h *routev3.HeaderMatcher) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: h}}
}

func principalAny() *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}
}

func principalAnd(ps []*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: ps}}}
}

func principalOr(ps []*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: ps}}}
}

func principalNot(p *rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: p}}
}

func principalMetadata(m *matcherv3.MetadataMatcher) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Metadata{Metadata: m}}
}

// principalAuthenticated matches the peer certificate identity: a
// gateway sees its mTLS peers' certificates itself, so istiod uses
// authenticated (not the io.istio.peer_principal filter state of
// waypoints).
func principalAuthenticated(m *matcherv3.StringMatcher) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m}}}
}
