package translate

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestMergeMessage(t *testing.T) {
	hcm := func(t *testing.T, f *listenerv3.Filter) *hcmv3.HttpConnectionManager {
		t.Helper()
		h := decodeHCM(f)
		if h == nil {
			t.Fatal("typed_config is no longer a connection manager")
		}
		return h
	}
	base := func(t *testing.T) *listenerv3.Filter {
		return &listenerv3.Filter{Name: hcmName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&hcmv3.HttpConnectionManager{
			StatPrefix:  "gw",
			HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})}}},
		})}}
	}
	for _, tc := range []struct {
		name  string
		patch func(t *testing.T) *listenerv3.Filter
		check func(t *testing.T, got *listenerv3.Filter)
	}{
		{
			name: "the same type inside an Any merges field by field",
			patch: func(t *testing.T) *listenerv3.Filter {
				return &listenerv3.Filter{ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&hcmv3.HttpConnectionManager{XffNumTrustedHops: 1})}}
			},
			check: func(t *testing.T, got *listenerv3.Filter) {
				h := hcm(t, got)
				if h.GetStatPrefix() != "gw" || h.GetXffNumTrustedHops() != 1 || len(h.GetHttpFilters()) != 1 {
					t.Errorf("merged: %v", h)
				}
			},
		},
		{
			name: "lists inside the Any append",
			patch: func(t *testing.T) *listenerv3.Filter {
				return &listenerv3.Filter{ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&hcmv3.HttpConnectionManager{
					HttpFilters: []*hcmv3.HttpFilter{{Name: "extra"}},
				})}}
			},
			check: func(t *testing.T, got *listenerv3.Filter) {
				if names := httpFilterNames(hcm(t, got)); len(names) != 2 || names[1] != "extra" {
					t.Errorf("http filters %v", names)
				}
			},
		},
		{
			name: "another type replaces the Any",
			patch: func(t *testing.T) *listenerv3.Filter {
				return &listenerv3.Filter{ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&tcpv3.TcpProxy{StatPrefix: "tcp"})}}
			},
			check: func(t *testing.T, got *listenerv3.Filter) {
				tp := &tcpv3.TcpProxy{}
				if err := got.GetTypedConfig().UnmarshalTo(tp); err != nil || tp.GetStatPrefix() != "tcp" {
					t.Errorf("typed_config %v, %v", got.GetTypedConfig(), err)
				}
				if got.GetName() != hcmName {
					t.Errorf("name %q changed", got.GetName())
				}
			},
		},
		{
			name:  "a set scalar replaces",
			patch: func(t *testing.T) *listenerv3.Filter { return &listenerv3.Filter{Name: "renamed"} },
			check: func(t *testing.T, got *listenerv3.Filter) {
				if got.GetName() != "renamed" || hcm(t, got).GetStatPrefix() != "gw" {
					t.Errorf("got %v", got)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, patch := base(t), tc.patch(t)
			keep := proto.Clone(patch)
			mergeMessage(dst, patch)
			tc.check(t, dst)
			if !proto.Equal(patch, keep) {
				t.Error("the merge changed the patch")
			}
		})
	}

	// Maps merge by key; a message taken from the patch is a copy.
	dst := &corev3.Metadata{FilterMetadata: nil}
	src := &listenerv3.Listener{PerConnectionBufferLimitBytes: wrapperspb.UInt32(7), Metadata: &corev3.Metadata{TypedFilterMetadata: map[string]*anypb.Any{"a": mustAny(&routerv3.Router{})}}}
	l := &listenerv3.Listener{Metadata: dst}
	mergeMessage(l, src)
	if l.GetPerConnectionBufferLimitBytes().GetValue() != 7 || len(l.GetMetadata().GetTypedFilterMetadata()) != 1 {
		t.Errorf("merged listener %v", l)
	}
	l.PerConnectionBufferLimitBytes.Value = 9
	if src.GetPerConnectionBufferLimitBytes().GetValue() != 7 {
		t.Error("the merged message is shared with the patch")
	}
}
