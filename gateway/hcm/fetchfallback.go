package hcm

import (
	"errors"
	"slices"

	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/wasm/fetch"
)

// A Wasm plugin whose module cannot be fetched when it first loads
// would leave its listener warming for good (istiod sets no
// initial_fetch_timeout). istio-agent, which fetches modules for Envoy,
// serves it instead with an RBAC filter: allow-all when its failure
// policy is FAIL_OPEN, deny-all otherwise, and fetches again at the next
// push; a plugin already serving keeps serving when the fetch of a new
// version fails, the update being refused. The gateway does the
// agent's part itself, so it does the same, with filters that answer as
// those RBAC filters do.
// https://github.com/istio/istio/blob/master/pkg/wasm/convert.go

// The RBAC type URLs istio-agent puts in place of a plugin; a filter
// whose type_urls do not list its kind's gets no stand-in, as Envoy
// would refuse the agent's.
const (
	rbacHTTPType    = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	rbacNetworkType = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
)

// FetchFallbackStat counts the stand-ins installed for plugins whose
// module could not be fetched.
const FetchFallbackStat = "wasm.remote_fetch_fallback"

// fetchFallback makes the stand-in of one kind of filter (HTTP or
// network).
type fetchFallback struct {
	rbacType string
	allow    any
	deny     any
}

var (
	httpFetchFallback    = &fetchFallback{rbacType: rbacHTTPType, allow: allowAllHTTP{}, deny: denyAllHTTP{}}
	networkFetchFallback = &fetchFallback{rbacType: rbacNetworkType, allow: allowAllNetwork{}, deny: denyAllNetwork{}}
)

// standIn returns the filter to serve for a config whose build failed
// with err, and whether it fails open; ok is false when err is not a
// failed module fetch or the filter's type_urls leave RBAC out.
func (f *fetchFallback) standIn(err error, ext *anypb.Any, typeURLs []string) (v any, open, ok bool) {
	if f == nil || !errors.Is(err, fetch.ErrNotFetched) || !slices.Contains(typeURLs, f.rbacType) {
		return nil, false, false
	}
	if failOpen(ext) {
		return f.allow, true, true
	}
	return f.deny, false, true
}

// isStandIn tells whether a slot serves a stand-in rather than a
// plugin.
func isStandIn(v any) bool {
	switch v.(type) {
	case allowAllHTTP, denyAllHTTP, allowAllNetwork, denyAllNetwork:
		return true
	}
	return false
}

// failOpen reads a Wasm filter config's failure policy as istio-agent
// does: FAIL_OPEN, or the deprecated fail_open when no policy is set.
func failOpen(a *anypb.Any) bool {
	_, msg, err := Unpack(a)
	if err != nil {
		return false
	}
	w, ok := msg.(interface{ GetConfig() *wasmv3.PluginConfig })
	if !ok {
		return false
	}
	pc := w.GetConfig()
	if p := pc.GetFailurePolicy(); p != wasmv3.FailurePolicy_UNSPECIFIED {
		return p == wasmv3.FailurePolicy_FAIL_OPEN
	}
	return pc.GetFailOpen()
}

// allowAllHTTP is the RBAC filter without rules: it takes no part.
type allowAllHTTP struct{}

func (allowAllHTTP) NewFilter(*filters.Exchange) any { return nil }

// denyAllHTTP is the RBAC filter with empty rules: no policy matches, so
// every request is denied, 403 "RBAC: access denied".
type denyAllHTTP struct{}

func (denyAllHTTP) NewFilter(*filters.Exchange) any { return denyAllHTTP{} }

func (denyAllHTTP) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	x.SendLocalReply(filters.LocalReply{Status: 403, Body: "RBAC: access denied", Details: "rbac_access_denied_matched_policy[none]"})
	return filters.Stop
}

// allowAllNetwork is the network RBAC filter without rules.
type allowAllNetwork struct{}

func (allowAllNetwork) NewNetworkFilter(filters.NetworkConn) filters.NetworkFilter { return nil }

// denyAllNetwork is the network RBAC filter with empty rules: as
// Envoy's, it lets the connection open and closes it when the client's
// first data comes.
type denyAllNetwork struct{}

func (denyAllNetwork) NewNetworkFilter(filters.NetworkConn) filters.NetworkFilter {
	return denyAllNetwork{}
}

func (denyAllNetwork) OnNewConnection() filters.Status { return filters.Continue }

func (denyAllNetwork) OnData(side filters.Side, _ *filters.Buffer, _ bool) filters.Status {
	if side == filters.SideDownstream {
		return filters.Stop
	}
	return filters.Continue
}

func (denyAllNetwork) OnClose(filters.Side, bool) {}
func (denyAllNetwork) OnDone()                    {}
