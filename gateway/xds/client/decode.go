package client

import (
	"errors"
	"fmt"
	"unicode/utf8"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// resourceWrapperType is envoy.service.discovery.v3.Resource, the envelope
// every Delta response uses and SotW responses may use (for TTLs and for
// naming a resource independently of its body).
const resourceWrapperType = resourcev3.APITypePrefix + "envoy.service.discovery.v3.Resource"

// subscriptionOrder is the order in which a stream subscribes, the one Envoy
// uses for ADS: clusters before their endpoints, listeners before their
// routes, so a server that sequences its pushes never has a route point at a
// cluster the client does not know yet. Extension configs (ECDS) come
// right after the listeners whose filters name them.
var subscriptionOrder = []string{
	resourcev3.ClusterType,
	resourcev3.EndpointType,
	resourcev3.ListenerType,
	resourcev3.ExtensionConfigType,
	resourcev3.RouteType,
	resourcev3.SecretType,
}

// isWildcard reports whether a type is subscribed as a whole: listeners and
// clusters are, routes, endpoints, secrets and extension configs are asked
// for by name.
func isWildcard(typeURL string) bool {
	return typeURL == resourcev3.ListenerType || typeURL == resourcev3.ClusterType
}

// item is one resource of a response. A nil res is a TTL heartbeat: the
// server confirms the named resource without resending it.
type item struct {
	name    string
	version string
	res     *anypb.Any
}

// sotwItems decodes a DiscoveryResponse, unwrapping Resource envelopes.
func sotwItems(resp *discoveryv3.DiscoveryResponse) ([]item, error) {
	typeURL := resp.GetTypeUrl()
	items := make([]item, 0, len(resp.GetResources()))
	seen := make(map[string]struct{}, len(resp.GetResources()))
	for i, a := range resp.GetResources() {
		var (
			it  item
			err error
		)
		if a.GetTypeUrl() == resourceWrapperType {
			var r discoveryv3.Resource
			if err = proto.Unmarshal(a.GetValue(), &r); err != nil {
				return nil, fmt.Errorf("resources[%d]: decoding %s: %w", i, resourceWrapperType, err)
			}
			it, err = decodeItem(typeURL, r.GetName(), r.GetVersion(), r.GetResource())
		} else {
			it, err = decodeItem(typeURL, "", "", a)
		}
		if err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		if _, dup := seen[it.name]; dup {
			return nil, fmt.Errorf("resources[%d]: duplicate resource name %q", i, it.name)
		}
		seen[it.name] = struct{}{}
		items = append(items, it)
	}
	return items, nil
}

// deltaItems decodes the added/updated resources of a DeltaDiscoveryResponse.
func deltaItems(resp *discoveryv3.DeltaDiscoveryResponse) ([]item, error) {
	items := make([]item, 0, len(resp.GetResources()))
	seen := make(map[string]struct{}, len(resp.GetResources()))
	for i, r := range resp.GetResources() {
		it, err := decodeItem(resp.GetTypeUrl(), r.GetName(), r.GetVersion(), r.GetResource())
		if err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		if _, dup := seen[it.name]; dup {
			return nil, fmt.Errorf("resources[%d]: duplicate resource name %q", i, it.name)
		}
		seen[it.name] = struct{}{}
		items = append(items, it)
	}
	return items, nil
}

// decodeItem checks one resource body against the response type and finds
// its name. The body's own name wins over the envelope's, since that is the
// name other resources reference it by.
func decodeItem(typeURL, name, version string, body *anypb.Any) (item, error) {
	if body == nil {
		if name == "" {
			return item{}, errors.New("resource envelope has neither name nor body")
		}
		return item{name: name, version: version}, nil
	}
	if body.GetTypeUrl() != typeURL {
		return item{}, fmt.Errorf("resource of type %s in a response for %s", body.GetTypeUrl(), typeURL)
	}
	own, err := resourceName(body.GetValue())
	if err != nil {
		return item{}, fmt.Errorf("decoding %s: %w", typeURL, err)
	}
	if own != "" {
		name = own
	}
	if name == "" {
		return item{}, fmt.Errorf("%s without a name", typeURL)
	}
	return item{name: name, version: version, res: body}, nil
}

// resourceName reads the name of a Listener, RouteConfiguration, Cluster,
// ClusterLoadAssignment (cluster_name), Secret or TypedExtensionConfig from
// its wire encoding. All six keep it in field 1, so the name is found without unmarshalling a
// whole listener, which the data plane does once, later, when it compiles
// it. As in proto3 parsing, the last occurrence of the field wins.
func resourceName(b []byte) (string, error) {
	var name string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 {
			if typ != protowire.BytesType {
				return "", fmt.Errorf("name field has wire type %d, want %d", typ, protowire.BytesType)
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", protowire.ParseError(n)
			}
			if !utf8.Valid(v) {
				return "", errors.New("name is not valid UTF-8")
			}
			name = string(v)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		b = b[n:]
	}
	return name, nil
}
