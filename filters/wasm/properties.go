package wasm

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/xdsmeta"
)

// Properties are Envoy's attributes, read by path: the path's segments
// are separated by NUL bytes. Values are serialized as Envoy's Wasm host
// does: strings as their bytes, integers as 8 little-endian bytes,
// booleans as one byte, timestamps as int64 Unix nanoseconds, header
// maps in the map wire form, messages in protobuf wire form.
// https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#properties

// property returns the value at path, or ok=false (NOT_FOUND).
func (v *vm) property(path string) ([]byte, bool) {
	seg := strings.Split(path, "\x00")
	cfg := v.plugin().cfg
	switch seg[0] {
	case "plugin_name":
		return []byte(cfg.name), true
	case "plugin_root_id":
		return []byte(cfg.rootID), true
	case "plugin_vm_id":
		return []byte(cfg.vmID), true
	case "node":
		return nodeProperty(v.pool.env, seg[1:])
	}
	s := v.streams[v.active]
	if s == nil {
		return nil, false
	}
	x := s.x
	if b, ok := x.Metadata[propertiesNamespace][path].([]byte); ok {
		return b, true
	}
	switch seg[0] {
	case "request":
		return requestProperty(v, x, seg[1:])
	case "response":
		return responseProperty(v, x, seg[1:])
	case "source":
		return addrProperty(x.Downstream.RemoteAddr, seg[1:])
	case "destination":
		return addrProperty(x.Downstream.LocalAddr, seg[1:])
	case "connection":
		return connectionProperty(x, seg[1:])
	case "upstream":
		return upstreamProperty(x, seg[1:])
	case "cluster_name":
		return routeString(x, func(r filters.Route) string { return r.Cluster() })
	case "route_name":
		return routeString(x, func(r filters.Route) string { return r.Name() })
	case "xds":
		if len(seg) >= 2 {
			if lookup, ok := xdsMetadata[seg[1]]; ok {
				return staticMetadataProperty(lookup, x, seg[2:])
			}
		}
		if len(seg) == 2 {
			switch seg[1] {
			case "cluster_name":
				return routeString(x, func(r filters.Route) string { return r.Cluster() })
			case "route_name":
				return routeString(x, func(r filters.Route) string { return r.Name() })
			case "virtual_host_name":
				return routeString(x, func(r filters.Route) string { return r.VirtualHost() })
			case "listener_name":
				return []byte(x.Downstream.Listener), true
			case "filter_chain_name":
				return []byte(x.Downstream.FilterChain), true
			case "listener_direction":
				return int64Bytes(int64(x.Downstream.ListenerDirection)), true
			case "node":
				return nodeProperty(v.pool.env, nil)
			}
		}
	case "metadata":
		return metadataProperty(x.Metadata, seg[1:])
	}
	return nil, false
}

func int64Bytes(n int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(n)) }

func boolBytes(b bool) []byte {
	if b {
		return []byte{1}
	}
	return []byte{0}
}

func requestProperty(v *vm, x *filters.Exchange, seg []string) ([]byte, bool) {
	if len(seg) == 0 {
		return nil, false
	}
	r := &x.Request
	switch seg[0] {
	case "path":
		return []byte(r.Path), true
	case "url_path":
		p, _, _ := strings.Cut(r.Path, "?")
		return []byte(p), true
	case "host":
		return []byte(r.Authority), true
	case "scheme":
		return []byte(r.Scheme), true
	case "method":
		return []byte(r.Method), true
	case "id":
		return []byte(r.ID), true
	case "protocol":
		return []byte(r.Protocol), true
	case "query":
		_, q, _ := strings.Cut(r.Path, "?")
		return []byte(q), true
	case "referer":
		return []byte(r.Header.Get("Referer")), true
	case "useragent":
		return []byte(r.Header.Get("User-Agent")), true
	case "time":
		return int64Bytes(x.Info.Start.UnixNano()), !x.Info.Start.IsZero()
	case "duration":
		if x.Info.Start.IsZero() {
			return nil, false
		}
		return int64Bytes(int64(time.Since(x.Info.Start))), true
	case "size":
		// The declared length, else what was read of the body so far.
		if r.ContentLength >= 0 {
			return int64Bytes(r.ContentLength), true
		}
		return int64Bytes(x.Info.BytesReceived), true
	case "total_size":
		return int64Bytes(x.Info.BytesReceived + headerBytes(r.Header) + requestLineBytes(r)), true
	case "headers":
		f := fieldMap{h: &r.Header, req: r}
		return headersProperty(f, seg[1:])
	}
	return nil, false
}

func responseProperty(v *vm, x *filters.Exchange, seg []string) ([]byte, bool) {
	if len(seg) == 0 || x.Response.Status == 0 {
		return nil, false
	}
	switch seg[0] {
	case "code":
		return int64Bytes(int64(x.Response.Status)), true
	case "code_details":
		return []byte(x.Info.ResponseCodeDetails), true
	case "flags":
		return int64Bytes(int64(responseFlagBits(x.Info.ResponseFlags))), true
	case "grpc_status":
		return grpcStatusProperty(x)
	case "size":
		return int64Bytes(x.Info.BytesSent), true
	case "total_size":
		return int64Bytes(x.Info.BytesSent + headerBytes(x.Response.Header) + headerBytes(x.Response.Trailer)), true
	case "backend_latency":
		if x.Info.UpstreamServiceTime <= 0 {
			return nil, false
		}
		return int64Bytes(int64(x.Info.UpstreamServiceTime)), true
	case "headers", "trailers":
		f := fieldMap{h: &x.Response.Header, resp: &x.Response}
		if seg[0] == "trailers" {
			f = fieldMap{h: &x.Response.Trailer}
		}
		return headersProperty(f, seg[1:])
	}
	return nil, false
}

func addrProperty(a netip.AddrPort, seg []string) ([]byte, bool) {
	if len(seg) != 1 || !a.IsValid() {
		return nil, false
	}
	switch seg[0] {
	case "address":
		return []byte(a.String()), true
	case "port":
		return int64Bytes(int64(a.Port())), true
	}
	return nil, false
}

func connectionProperty(x *filters.Exchange, seg []string) ([]byte, bool) {
	if len(seg) != 1 {
		return nil, false
	}
	t := x.Downstream.TLS
	switch seg[0] {
	case "id":
		if x.Downstream.ID == 0 {
			return nil, false
		}
		return int64Bytes(int64(x.Downstream.ID)), true
	case "mtls":
		return boolBytes(t != nil && len(t.PeerCertificates) > 0), true
	case "requested_server_name":
		if t == nil {
			return []byte{}, true
		}
		return []byte(t.ServerName), true
	case "tls_version":
		if t == nil {
			return nil, false
		}
		return []byte(tlsVersion(t.Version)), true
	case "subject_peer_certificate", "sha256_peer_certificate_digest", "dns_san_peer_certificate", "uri_san_peer_certificate":
		return peerCertificateProperty(x, seg[0])
	}
	return nil, false
}

func tlsVersion(v uint16) string {
	switch v {
	case 0x0301:
		return "TLSv1"
	case 0x0302:
		return "TLSv1.1"
	case 0x0303:
		return "TLSv1.2"
	case 0x0304:
		return "TLSv1.3"
	}
	return ""
}

func routeString(x *filters.Exchange, f func(filters.Route) string) ([]byte, bool) {
	r := x.Route
	if r == nil {
		return nil, false
	}
	return []byte(f(r)), true
}

// nodeProperty reads the gateway's xDS node as Envoy's node attribute:
// node (the message) and any field below it (node.id,
// node.metadata.<key>, node.locality.zone...).
func nodeProperty(env filters.Env, seg []string) ([]byte, bool) {
	if env.Node == nil {
		return nil, false
	}
	return messageProperty(env.Node.ProtoReflect(), seg)
}

// xdsMetadata are the xds.*_metadata attributes: the static metadata
// of a resource the stream went through.
var xdsMetadata = map[string]func(*filters.Exchange) (*corev3.Metadata, bool){
	"listener_metadata":      xdsmeta.Listener,
	"virtual_host_metadata":  xdsmeta.VirtualHost,
	"route_metadata":         xdsmeta.Route,
	"cluster_metadata":       xdsmeta.Cluster,
	"upstream_host_metadata": xdsmeta.UpstreamHost,
}

// staticMetadataProperty reads a resource's metadata, an
// envoy.config.core.v3.Metadata, and the fields below it
// (xds.cluster_metadata.filter_metadata.istio.services). A resource
// without metadata reads as an empty message, as Envoy's default
// instance; with no such resource the attribute is NOT_FOUND.
func staticMetadataProperty(lookup func(*filters.Exchange) (*corev3.Metadata, bool), x *filters.Exchange, seg []string) ([]byte, bool) {
	m, ok := lookup(x)
	if !ok {
		return nil, false
	}
	if m == nil {
		m = &corev3.Metadata{}
	}
	return messageProperty(m.ProtoReflect(), seg)
}

// metadataProperty reads the stream's dynamic metadata as Envoy's
// metadata attribute, an envoy.config.core.v3.Metadata:
// metadata.filter_metadata.<namespace>.<key>. The shorter
// metadata.<namespace>.<key> reads the same value.
func metadataProperty(md map[string]map[string]any, seg []string) ([]byte, bool) {
	if len(seg) > 0 && seg[0] != "filter_metadata" {
		seg = append([]string{"filter_metadata"}, seg...)
	}
	m := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	for ns, kv := range md {
		if ns == propertiesNamespace || (len(seg) > 1 && ns != seg[1]) {
			continue
		}
		fields := map[string]*structpb.Value{}
		for k, val := range kv {
			if sv, ok := metadataValue(val); ok {
				fields[k] = sv
			}
		}
		m.FilterMetadata[ns] = &structpb.Struct{Fields: fields}
	}
	return messageProperty(m.ProtoReflect(), seg)
}

// metadataValue converts a dynamic metadata value as Envoy holds it, a
// google.protobuf.Value.
func metadataValue(val any) (*structpb.Value, bool) {
	switch t := val.(type) {
	case *structpb.Value:
		return t, true
	case *structpb.Struct:
		return structpb.NewStructValue(t), true
	case []byte:
		return structpb.NewStringValue(string(t)), true
	}
	sv, err := structpb.NewValue(val)
	return sv, err == nil
}
