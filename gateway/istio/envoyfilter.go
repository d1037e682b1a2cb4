package istio

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"istio.io/api/networking/v1alpha3"

	// Typed configs inside a patch's value (typed_config, "@type") are
	// decoded by type URL: the types must be linked in.
	_ "github.com/waygate/waygate/gateway/xds/extensions"
)

// EnvoyFilterValue decodes an EnvoyFilter patch's value into the Envoy
// message the patch applies to: a Listener, FilterChain, network Filter,
// HttpFilter, ListenerFilter, RouteConfiguration, VirtualHost, Route,
// Cluster or (ECDS) TypedExtensionConfig. Field
// names may be snake_case or camelCase, as in Istio; an unknown field or
// an unknown "@type" is an error, so that a typo is reported instead of
// silently dropped.
func EnvoyFilterValue(applyTo v1alpha3.EnvoyFilter_ApplyTo, value *structpb.Struct) (proto.Message, error) {
	var m proto.Message
	switch applyTo {
	case v1alpha3.EnvoyFilter_LISTENER:
		m = &listenerv3.Listener{}
	case v1alpha3.EnvoyFilter_FILTER_CHAIN:
		m = &listenerv3.FilterChain{}
	case v1alpha3.EnvoyFilter_LISTENER_FILTER:
		m = &listenerv3.ListenerFilter{}
	case v1alpha3.EnvoyFilter_NETWORK_FILTER:
		m = &listenerv3.Filter{}
	case v1alpha3.EnvoyFilter_HTTP_FILTER:
		m = &hcmv3.HttpFilter{}
	case v1alpha3.EnvoyFilter_ROUTE_CONFIGURATION:
		m = &routev3.RouteConfiguration{}
	case v1alpha3.EnvoyFilter_VIRTUAL_HOST:
		m = &routev3.VirtualHost{}
	case v1alpha3.EnvoyFilter_HTTP_ROUTE:
		m = &routev3.Route{}
	case v1alpha3.EnvoyFilter_CLUSTER:
		m = &clusterv3.Cluster{}
	case v1alpha3.EnvoyFilter_EXTENSION_CONFIG:
		m = &corev3.TypedExtensionConfig{}
	default:
		return nil, fmt.Errorf("patches to %s are not supported", applyTo)
	}
	if value == nil {
		return m, nil
	}
	raw, err := protojson.Marshal(value)
	if err != nil {
		return nil, err
	}
	if err := protojson.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("not a valid %s: %v", m.ProtoReflect().Descriptor().FullName(), cleanProtoJSONError(err))
	}
	return m, nil
}

// cleanProtoJSONError drops what protojson's errors say of the JSON it
// was given (which the user never wrote: it comes from the YAML) and
// its non-breaking spaces, which read oddly in a finding.
func cleanProtoJSONError(err error) string {
	s := strings.ReplaceAll(err.Error(), "\u00a0", " ")
	s = strings.TrimPrefix(s, "proto: ")
	return jsonPosition.ReplaceAllString(s, "")
}

var jsonPosition = regexp.MustCompile(`^\(line \d+:\d+\): `)

// envoyFilterOps are the operations each applyTo supports, as in
// istiod. On listeners, filter chains, virtual hosts and clusters, the
// INSERT operations add at the end, as ADD does.
var envoyFilterOps = map[v1alpha3.EnvoyFilter_ApplyTo][]v1alpha3.EnvoyFilter_Patch_Operation{
	v1alpha3.EnvoyFilter_LISTENER:            addOps,
	v1alpha3.EnvoyFilter_FILTER_CHAIN:        addOps,
	v1alpha3.EnvoyFilter_NETWORK_FILTER:      insertOps,
	v1alpha3.EnvoyFilter_LISTENER_FILTER:     insertOps,
	v1alpha3.EnvoyFilter_HTTP_FILTER:         insertOps,
	v1alpha3.EnvoyFilter_ROUTE_CONFIGURATION: {v1alpha3.EnvoyFilter_Patch_MERGE},
	v1alpha3.EnvoyFilter_VIRTUAL_HOST:        append(addOps[:len(addOps):len(addOps)], v1alpha3.EnvoyFilter_Patch_REPLACE),
	v1alpha3.EnvoyFilter_HTTP_ROUTE:          {v1alpha3.EnvoyFilter_Patch_ADD, v1alpha3.EnvoyFilter_Patch_REMOVE, v1alpha3.EnvoyFilter_Patch_MERGE, v1alpha3.EnvoyFilter_Patch_INSERT_BEFORE, v1alpha3.EnvoyFilter_Patch_INSERT_AFTER, v1alpha3.EnvoyFilter_Patch_INSERT_FIRST},
	v1alpha3.EnvoyFilter_CLUSTER:             addOps,
	v1alpha3.EnvoyFilter_EXTENSION_CONFIG:    {v1alpha3.EnvoyFilter_Patch_ADD},
}

var addOps = []v1alpha3.EnvoyFilter_Patch_Operation{
	v1alpha3.EnvoyFilter_Patch_ADD, v1alpha3.EnvoyFilter_Patch_REMOVE, v1alpha3.EnvoyFilter_Patch_MERGE,
	v1alpha3.EnvoyFilter_Patch_INSERT_BEFORE, v1alpha3.EnvoyFilter_Patch_INSERT_AFTER, v1alpha3.EnvoyFilter_Patch_INSERT_FIRST,
}

var insertOps = []v1alpha3.EnvoyFilter_Patch_Operation{
	v1alpha3.EnvoyFilter_Patch_ADD, v1alpha3.EnvoyFilter_Patch_REMOVE, v1alpha3.EnvoyFilter_Patch_MERGE, v1alpha3.EnvoyFilter_Patch_REPLACE,
	v1alpha3.EnvoyFilter_Patch_INSERT_BEFORE, v1alpha3.EnvoyFilter_Patch_INSERT_AFTER, v1alpha3.EnvoyFilter_Patch_INSERT_FIRST,
}

// envoyFilter checks each patch: an applyTo and operation Waygate applies
// and that go together, a match of the kind the applyTo needs, a value
// that decodes into the patched Envoy message. What only a sidecar would
// match (SIDECAR_INBOUND, SIDECAR_OUTBOUND) is valid and never applies to
// a gateway; what Waygate does not apply is a warning naming the field.
func (v *validator) envoyFilter(key Key, ef *v1alpha3.EnvoyFilter) {
	if len(ef.GetTargetRefs()) > 0 {
		v.warnf(key, "spec.targetRefs", "targetRefs are not supported; use workloadSelector. The EnvoyFilter applies to no gateway")
	}
	for i, cp := range ef.GetConfigPatches() {
		p := indexPath("spec.configPatches", i)
		at := cp.GetApplyTo()
		ops, supported := envoyFilterOps[at]
		switch {
		case at == v1alpha3.EnvoyFilter_INVALID:
			v.errorf(key, p+".applyTo", "required: what the patch applies to")
			continue
		case !supported:
			v.warnf(key, p+".applyTo", "patches to %s are not supported; this patch is skipped", at)
			continue
		}
		op := cp.GetPatch().GetOperation()
		switch {
		case op == v1alpha3.EnvoyFilter_Patch_INVALID:
			v.errorf(key, p+".patch.operation", "required: how to patch")
			continue
		case !slices.Contains(ops, op):
			v.errorf(key, p+".patch.operation", "%s cannot be applied to %s", op, at)
			continue
		}
		m := cp.GetMatch()
		switch at {
		case v1alpha3.EnvoyFilter_LISTENER, v1alpha3.EnvoyFilter_FILTER_CHAIN, v1alpha3.EnvoyFilter_NETWORK_FILTER, v1alpha3.EnvoyFilter_HTTP_FILTER, v1alpha3.EnvoyFilter_LISTENER_FILTER:
			if m.GetRouteConfiguration() != nil || m.GetCluster() != nil {
				v.errorf(key, p+".match", "%s needs a listener match", at)
			}
			if m.GetListener().GetPortName() != "" {
				v.warnf(key, p+".match.listener.portName", "portName is ignored, as istiod ignores it on a gateway; use portNumber")
			}
		case v1alpha3.EnvoyFilter_ROUTE_CONFIGURATION, v1alpha3.EnvoyFilter_VIRTUAL_HOST, v1alpha3.EnvoyFilter_HTTP_ROUTE:
			if m.GetListener() != nil || m.GetCluster() != nil {
				v.errorf(key, p+".match", "%s needs a routeConfiguration match", at)
			}
			if gw := m.GetRouteConfiguration().GetGateway(); gw != "" && !strings.Contains(gw, "/") {
				v.errorf(key, p+".match.routeConfiguration.gateway", "%q is not namespace/name", gw)
			}
		case v1alpha3.EnvoyFilter_CLUSTER:
			if m.GetListener() != nil || m.GetRouteConfiguration() != nil {
				v.errorf(key, p+".match", "CLUSTER needs a cluster match")
			}
		}
		if op == v1alpha3.EnvoyFilter_Patch_MERGE || op == v1alpha3.EnvoyFilter_Patch_REMOVE || op == v1alpha3.EnvoyFilter_Patch_REPLACE {
			// istiod applies these to every filter when the match names
			// none: valid, but rarely meant.
			switch {
			case at == v1alpha3.EnvoyFilter_NETWORK_FILTER && m.GetListener().GetFilterChain().GetFilter().GetName() == "":
				v.warnf(key, p+".match.listener.filterChain.filter.name", "no network filter named: the %s applies to every network filter of the matching chains", op)
			case at == v1alpha3.EnvoyFilter_LISTENER_FILTER && m.GetListener().GetListenerFilter() == "":
				v.warnf(key, p+".match.listener.listenerFilter", "no listener filter named: the %s applies to every listener filter of the matching listeners", op)
			case at == v1alpha3.EnvoyFilter_HTTP_FILTER && m.GetListener().GetFilterChain().GetFilter().GetSubFilter().GetName() == "":
				v.warnf(key, p+".match.listener.filterChain.filter.subFilter.name", "no HTTP filter named: the %s applies to every HTTP filter of the matching connection managers", op)
			}
		}
		if cp.GetPatch().GetFilterClass() != v1alpha3.EnvoyFilter_Patch_UNSPECIFIED {
			v.warnf(key, p+".patch.filterClass", "filterClass is ignored, as istiod ignores it; the operation places the filter")
		}
		if pv := m.GetProxy().GetProxyVersion(); pv != "" {
			if _, err := regexp.Compile(pv); err != nil {
				v.errorf(key, p+".match.proxy.proxyVersion", "not a valid regular expression: %v", err)
			}
		}
		if op != v1alpha3.EnvoyFilter_Patch_REMOVE {
			if cp.GetPatch().GetValue() == nil {
				v.errorf(key, p+".patch.value", "required: the %s to %s", at, strings.ToLower(op.String()))
			} else if _, err := EnvoyFilterValue(at, cp.GetPatch().GetValue()); err != nil {
				v.errorf(key, p+".patch.value", "%v", err)
			}
		}
	}
}
