package translate

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"istio.io/api/networking/v1alpha3"
)

// headerOps are the header mutations of an Istio Headers block.
type headerOps struct {
	requestAdd     []*corev3.HeaderValueOption
	responseAdd    []*corev3.HeaderValueOption
	requestRemove  []string
	responseRemove []string
	// authority is a request "set"/"add" of :authority or Host, which
	// istiod turns into a host rewrite instead of a header mutation.
	authority string
}

// translateHeaders follows istiod's TranslateHeadersOperations
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#Headers):
// set → OVERWRITE_IF_EXISTS_OR_ADD, add → APPEND_IF_EXISTS_OR_ADD, each
// sorted by name, sets first; pseudo-headers and Host are never mutated.
func translateHeaders(h *v1alpha3.Headers) headerOps {
	req, resp := h.GetRequest(), h.GetResponse()
	var ops headerOps
	set, setAuth := headerValues(req.GetSet(), corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	add, addAuth := headerValues(req.GetAdd(), corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)
	ops.requestAdd = append(set, add...)
	ops.authority = addAuth
	if setAuth != "" {
		ops.authority = setAuth
	}
	rset, _ := headerValues(resp.GetSet(), corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	radd, _ := headerValues(resp.GetAdd(), corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)
	ops.responseAdd = append(rset, radd...)
	ops.requestRemove = dropInternal(req.GetRemove())
	ops.responseRemove = dropInternal(resp.GetRemove())
	return ops
}

func headerValues(m map[string]string, action corev3.HeaderValueOption_HeaderAppendAction) ([]*corev3.HeaderValueOption, string) {
	var out []*corev3.HeaderValueOption
	authority := ""
	for _, k := range sortedKeys(m) {
		if strings.EqualFold(k, ":authority") || strings.EqualFold(k, "host") {
			authority = m[k]
		}
		if isInternalHeader(k) {
			continue
		}
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: k, Value: m[k]},
			AppendAction: action,
		})
	}
	return out, authority
}

func isInternalHeader(k string) bool {
	return strings.HasPrefix(k, ":") || strings.EqualFold(k, "host")
}

func dropInternal(keys []string) []string {
	var out []string
	for _, k := range keys {
		if !isInternalHeader(k) {
			out = append(out, k)
		}
	}
	return out
}
