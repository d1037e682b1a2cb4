package router

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/matcher"
)

type hashKind uint8

const (
	hashHeader hashKind = iota
	hashCookie
	hashSourceIP
	hashQuery
	hashFilterState
)

// hashPolicy is one compiled RouteAction.HashPolicy.
type hashPolicy struct {
	kind     hashKind
	key      matcher.HeaderKey // header
	rewrite  *Rewrite          // header regex_rewrite
	name     string            // cookie, query parameter or filter state key
	ttl      time.Duration
	hasTTL   bool
	path     string
	attrs    []string // "name=value" cookie attributes
	terminal bool
}

func compileHashPolicy(p *routev3.RouteAction_HashPolicy) (hashPolicy, error) {
	hp := hashPolicy{terminal: p.GetTerminal()}
	switch s := p.GetPolicySpecifier().(type) {
	case *routev3.RouteAction_HashPolicy_Header_:
		if s.Header.GetHeaderName() == "" {
			return hp, errors.New("header.header_name: must not be empty")
		}
		hp.kind, hp.key = hashHeader, matcher.NewHeaderKey(s.Header.GetHeaderName())
		if s.Header.GetRegexRewrite() != nil {
			rw, err := compileRewrite(s.Header.GetRegexRewrite())
			if err != nil {
				return hp, fmt.Errorf("header.regex_rewrite.%w", err)
			}
			hp.rewrite = rw
		}
	case *routev3.RouteAction_HashPolicy_Cookie_:
		c := s.Cookie
		if c.GetName() == "" {
			return hp, errors.New("cookie.name: must not be empty")
		}
		hp.kind, hp.name, hp.path = hashCookie, c.GetName(), c.GetPath()
		if c.GetTtl() != nil {
			hp.ttl, hp.hasTTL = c.GetTtl().AsDuration(), true
		}
		for _, a := range c.GetAttributes() {
			attr := a.GetName()
			if a.GetValue() != "" {
				attr += "=" + a.GetValue()
			}
			hp.attrs = append(hp.attrs, attr)
		}
	case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
		if !s.ConnectionProperties.GetSourceIp() {
			return hp, errors.New("connection_properties.source_ip: must be true")
		}
		hp.kind = hashSourceIP
	case *routev3.RouteAction_HashPolicy_QueryParameter_:
		if s.QueryParameter.GetName() == "" {
			return hp, errors.New("query_parameter.name: must not be empty")
		}
		hp.kind, hp.name = hashQuery, s.QueryParameter.GetName()
	case *routev3.RouteAction_HashPolicy_FilterState_:
		if s.FilterState.GetKey() == "" {
			return hp, errors.New("filter_state.key: must not be empty")
		}
		hp.kind, hp.name = hashFilterState, s.FilterState.GetKey()
	default:
		return hp, errors.New("policy_specifier: one of header, cookie, connection_properties, query_parameter or filter_state is required")
	}
	return hp, nil
}

// HashInput is what hash policies read besides the request.
type HashInput struct {
	Request *filters.Request
	Conn    *filters.Connection
	// FilterState looks up a filter state value by key, for filter_state
	// policies; nil when there is none.
	FilterState func(key string) (string, bool)
}

// Hash computes the request's hash for ring-hash and Maglev load
// balancing, as Envoy's HashPolicyImpl::generateHash does: each policy's
// xxHash64 is folded in with a one-bit rotation, and a terminal policy that
// produced a hash ends the walk. ok is false when no policy applied.
// A cookie policy with a ttl whose cookie is missing generates the cookie
// (the hash of the connection's addresses, as Envoy does) and returns the
// Set-Cookie value for the router to send with the response.
func (f *Forward) Hash(in HashInput) (h uint64, ok bool, setCookie string) {
	for i := range f.hashPolicies {
		p := &f.hashPolicies[i]
		v, got, c := p.evaluate(in)
		if c != "" {
			setCookie = c
		}
		if got {
			if ok {
				h = (h<<1 | h>>63) ^ v
			} else {
				h, ok = v, true
			}
		}
		if p.terminal && ok {
			break
		}
	}
	return h, ok, setCookie
}

func (p *hashPolicy) evaluate(in HashInput) (uint64, bool, string) {
	req := in.Request
	switch p.kind {
	case hashHeader:
		if req == nil {
			return 0, false, ""
		}
		vals := p.key.Values(req)
		if len(vals) == 0 {
			return 0, false, ""
		}
		if p.rewrite != nil || len(vals) > 1 {
			vals = slices.Clone(vals)
			if p.rewrite != nil {
				for i := range vals {
					vals[i] = p.rewrite.Replace(vals[i])
				}
			}
			// Sorted so that the order of repeated headers does not
			// change the hash.
			slices.Sort(vals)
		}
		var seed uint64
		for _, v := range vals {
			d := xxhash.NewWithSeed(seed)
			d.WriteString(v)
			seed = d.Sum64()
		}
		return seed, true, ""
	case hashCookie:
		if req != nil {
			if v, ok := cookieValue(req, p.name); ok {
				return xxhash.Sum64String(v), true, ""
			}
		}
		if !p.hasTTL {
			return 0, false, ""
		}
		var seed string
		if in.Conn != nil {
			seed = in.Conn.RemoteAddr.String() + in.Conn.LocalAddr.String()
		}
		value := fmt.Sprintf("%016x", xxhash.Sum64String(seed))
		return xxhash.Sum64String(value), true, p.setCookie(value)
	case hashSourceIP:
		if in.Conn == nil || !in.Conn.RemoteAddr.IsValid() {
			return 0, false, ""
		}
		return xxhash.Sum64String(in.Conn.RemoteAddr.Addr().String()), true, ""
	case hashQuery:
		if req == nil {
			return 0, false, ""
		}
		_, q := splitPath(req.Path)
		if v, ok := rawQueryValue(q, p.name); ok {
			return xxhash.Sum64String(v), true, ""
		}
	case hashFilterState:
		if in.FilterState != nil {
			if v, ok := in.FilterState(p.name); ok {
				return xxhash.Sum64String(v), true, ""
			}
		}
	}
	return 0, false, ""
}

// setCookie formats the cookie as Envoy's makeSetCookieValue does.
func (p *hashPolicy) setCookie(value string) string {
	var b strings.Builder
	b.WriteString(p.name + "=\"" + value + "\"")
	if s := int64(p.ttl / time.Second); s != 0 {
		b.WriteString("; Max-Age=" + strconv.FormatInt(s, 10))
	}
	if p.path != "" {
		b.WriteString("; Path=" + p.path)
	}
	for _, a := range p.attrs {
		b.WriteString("; " + a)
	}
	b.WriteString("; HttpOnly")
	return b.String()
}

// rawQueryValue is the first undecoded value of a parameter, as Envoy's
// query-parameter hash policy reads it.
func rawQueryValue(query, name string) (string, bool) {
	for query != "" {
		var kv string
		kv, query, _ = cutByte(query, '&')
		k, v, _ := cutByte(kv, '=')
		if k == name {
			return v, true
		}
	}
	return "", false
}

func cutByte(s string, c byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
