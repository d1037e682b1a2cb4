package ratelimit

import (
	"errors"
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/matcher"
	"github.com/waygate/waygate/gateway/router"
)

// Entry is one key/value pair of a rate limit descriptor.
type Entry struct {
	Key, Value string
}

// Descriptor is what one route rate_limits entry produces for a request:
// its actions' entries, in order. Both filters match descriptors against
// limits, the local one against its own descriptors, the global one in
// the rate limit service.
type Descriptor []Entry

// actionKind is one of the route rate limit actions Waygate evaluates.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#config-route-v3-ratelimit-action
type actionKind uint8

const (
	actSourceCluster actionKind = iota
	actDestinationCluster
	actRequestHeaders
	actRemoteAddress
	actGenericKey
	actHeaderValueMatch
	actMetadata
	actMaskedRemoteAddress
)

type action struct {
	kind         actionKind
	key, value   string
	header       matcher.HeaderKey
	skipIfAbsent bool
	headers      []matcher.Header
	expectMatch  bool
	v4Bits       int
	v6Bits       int
	// metadata action: filter namespace and path, or the route's
	// metadata when fromRoute.
	mdFilter  string
	mdPath    []string
	mdDefault string
	fromRoute bool
}

// rateLimit is one compiled routev3.RateLimit.
type rateLimit struct {
	stage   uint32
	actions []action
}

// compileRateLimits compiles a rate_limits list. field prefixes errors.
func compileRateLimits(rls []*routev3.RateLimit, field string) ([]rateLimit, error) {
	out := make([]rateLimit, 0, len(rls))
	for i, rl := range rls {
		c := rateLimit{stage: rl.GetStage().GetValue()}
		if len(rl.GetActions()) == 0 {
			return nil, fmt.Errorf("%s[%d].actions: at least one action is required", field, i)
		}
		for j, a := range rl.GetActions() {
			ca, err := compileAction(a)
			if err != nil {
				return nil, fmt.Errorf("%s[%d].actions[%d]: %w", field, i, j, err)
			}
			c.actions = append(c.actions, ca)
		}
		out = append(out, c)
	}
	return out, nil
}

func compileAction(a *routev3.RateLimit_Action) (action, error) {
	switch s := a.GetActionSpecifier().(type) {
	case *routev3.RateLimit_Action_SourceCluster_:
		return action{kind: actSourceCluster, key: "source_cluster"}, nil
	case *routev3.RateLimit_Action_DestinationCluster_:
		return action{kind: actDestinationCluster, key: "destination_cluster"}, nil
	case *routev3.RateLimit_Action_RequestHeaders_:
		h := s.RequestHeaders
		if h.GetHeaderName() == "" || h.GetDescriptorKey() == "" {
			return action{}, errors.New("request_headers: header_name and descriptor_key must not be empty")
		}
		return action{kind: actRequestHeaders, key: h.GetDescriptorKey(), header: matcher.NewHeaderKey(h.GetHeaderName()), skipIfAbsent: h.GetSkipIfAbsent()}, nil
	case *routev3.RateLimit_Action_RemoteAddress_:
		return action{kind: actRemoteAddress, key: "remote_address"}, nil
	case *routev3.RateLimit_Action_GenericKey_:
		g := s.GenericKey
		if g.GetDescriptorValue() == "" {
			return action{}, errors.New("generic_key.descriptor_value: must not be empty")
		}
		return action{kind: actGenericKey, key: orDefault(g.GetDescriptorKey(), "generic_key"), value: g.GetDescriptorValue()}, nil
	case *routev3.RateLimit_Action_HeaderValueMatch_:
		m := s.HeaderValueMatch
		if m.GetDescriptorValue() == "" {
			return action{}, errors.New("header_value_match.descriptor_value: must not be empty")
		}
		hs, err := matcher.CompileHeaders(m.GetHeaders(), "header_value_match.headers")
		if err != nil {
			return action{}, err
		}
		expect := m.GetExpectMatch() == nil || m.GetExpectMatch().GetValue()
		return action{kind: actHeaderValueMatch, key: orDefault(m.GetDescriptorKey(), "header_match"), value: m.GetDescriptorValue(), headers: hs, expectMatch: expect}, nil
	case *routev3.RateLimit_Action_MaskedRemoteAddress_:
		m := s.MaskedRemoteAddress
		a := action{kind: actMaskedRemoteAddress, key: "masked_remote_address", v4Bits: 32, v6Bits: 128}
		if v := m.GetV4PrefixMaskLen(); v != nil {
			if v.GetValue() > 32 {
				return action{}, fmt.Errorf("masked_remote_address.v4_prefix_mask_len: %d is above 32", v.GetValue())
			}
			a.v4Bits = int(v.GetValue())
		}
		if v := m.GetV6PrefixMaskLen(); v != nil {
			if v.GetValue() > 128 {
				return action{}, fmt.Errorf("masked_remote_address.v6_prefix_mask_len: %d is above 128", v.GetValue())
			}
			a.v6Bits = int(v.GetValue())
		}
		return a, nil
	case *routev3.RateLimit_Action_Metadata:
		m := s.Metadata
		return compileMetadata(m.GetDescriptorKey(), m.GetMetadataKey().GetKey(), m.GetMetadataKey().GetPath(), m.GetDefaultValue(),
			m.GetSource() == routev3.RateLimit_Action_MetaData_ROUTE_ENTRY, m.GetSkipIfAbsent())
	case *routev3.RateLimit_Action_DynamicMetadata:
		m := s.DynamicMetadata
		return compileMetadata(m.GetDescriptorKey(), m.GetMetadataKey().GetKey(), m.GetMetadataKey().GetPath(), m.GetDefaultValue(), false, false)
	case nil:
		return action{}, errors.New("action_specifier: must be set")
	}
	return action{}, fmt.Errorf("%T: not supported; supported actions are source_cluster, destination_cluster, request_headers, remote_address, generic_key, header_value_match, metadata, masked_remote_address", a.GetActionSpecifier())
}

type pathSegment interface{ GetKey() string }

func compileMetadata[P pathSegment](key, filter string, path []P, def string, fromRoute, skip bool) (action, error) {
	if key == "" {
		return action{}, errors.New("metadata.descriptor_key: must not be empty")
	}
	if filter == "" || len(path) == 0 {
		return action{}, errors.New("metadata.metadata_key: key and path must be set")
	}
	a := action{kind: actMetadata, key: key, mdFilter: filter, mdDefault: def, fromRoute: fromRoute, skipIfAbsent: skip}
	for i, p := range path {
		if p.GetKey() == "" {
			return action{}, fmt.Errorf("metadata.metadata_key.path[%d].key: must not be empty", i)
		}
		a.mdPath = append(a.mdPath, p.GetKey())
	}
	return a, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// request is what the actions read: the exchange, and the gateway's own
// cluster name for source_cluster.
type request struct {
	x             *filters.Exchange
	sourceCluster string
}

// descriptors appends the descriptors of every rate limit of stage to
// out. A rate limit whose action cannot produce its entry (a missing
// header without skip_if_absent, a header_value_match that fails)
// produces no descriptor, as in Envoy's RateLimitPolicyEntryImpl.
func descriptors(out []Descriptor, rls []rateLimit, stage uint32, useStage bool, r *request) []Descriptor {
	for i := range rls {
		rl := &rls[i]
		if useStage && rl.stage != stage {
			continue
		}
		var d Descriptor
		ok := true
		for j := range rl.actions {
			e, produced, skip := rl.actions[j].entry(r)
			if skip {
				continue
			}
			if !produced {
				ok = false
				break
			}
			d = append(d, e)
		}
		if ok && len(d) > 0 {
			out = append(out, d)
		}
	}
	return out
}

// entry evaluates one action: the entry, whether it was produced, and
// whether the action is skipped (absent with skip_if_absent).
func (a *action) entry(r *request) (e Entry, ok, skip bool) {
	x := r.x
	switch a.kind {
	case actSourceCluster:
		return Entry{a.key, r.sourceCluster}, r.sourceCluster != "", false
	case actDestinationCluster:
		c := ""
		if rt := x.MatchedRoute(); rt != nil {
			c = rt.Cluster()
		}
		if c == "" {
			c = x.Info.UpstreamCluster
		}
		return Entry{a.key, c}, c != "", false
	case actRequestHeaders:
		v, found := a.header.First(&x.Request)
		if !found {
			return Entry{}, false, a.skipIfAbsent
		}
		return Entry{a.key, v}, true, false
	case actRemoteAddress:
		ip := x.Downstream.RemoteAddr.Addr()
		if !ip.IsValid() {
			return Entry{}, false, false
		}
		return Entry{a.key, ip.Unmap().String()}, true, false
	case actMaskedRemoteAddress:
		ip := x.Downstream.RemoteAddr.Addr().Unmap()
		if !ip.IsValid() {
			return Entry{}, false, false
		}
		bits := a.v6Bits
		if ip.Is4() {
			bits = a.v4Bits
		}
		p, err := ip.Prefix(bits)
		if err != nil {
			return Entry{}, false, false
		}
		return Entry{a.key, p.String()}, true, false
	case actGenericKey:
		return Entry{a.key, a.value}, true, false
	case actHeaderValueMatch:
		if matcher.MatchAll(a.headers, &x.Request) != a.expectMatch {
			return Entry{}, false, false
		}
		return Entry{a.key, a.value}, true, false
	case actMetadata:
		v, found := a.metadataValue(x)
		switch {
		case found && v != "":
			return Entry{a.key, v}, true, false
		case a.mdDefault != "":
			return Entry{a.key, a.mdDefault}, true, false
		}
		return Entry{}, false, a.skipIfAbsent
	}
	return Entry{}, false, false
}

// metadataValue reads a string at the action's path in dynamic metadata
// (what jwt_authn writes its payload to) or in the route's metadata.
// Envoy takes the value's string_value: a number or struct there reads
// as empty.
func (a *action) metadataValue(x *filters.Exchange) (string, bool) {
	var v any
	if a.fromRoute {
		rt, _ := router.Resolve(x.MatchedRoute())
		if rt == nil || rt.Metadata == nil {
			return "", false
		}
		s := rt.Metadata.GetFilterMetadata()[a.mdFilter]
		if s == nil {
			return "", false
		}
		v = s.AsMap()
	} else {
		m, ok := x.Metadata[a.mdFilter]
		if !ok {
			return "", false
		}
		v = m
	}
	for _, k := range a.mdPath {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[k]; !ok {
			return "", false
		}
	}
	s, ok := v.(string)
	return s, ok
}
