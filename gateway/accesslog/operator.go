package accesslog

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/xdsmeta"
)

type opKind uint8

const (
	opStartTime opKind = iota
	opReqHeader
	opReqWithoutQuery
	opRespHeader
	opRespTrailer
	opProtocol
	opResponseCode
	opResponseCodeDetails
	opResponseFlags
	opBytesReceived
	opBytesSent
	opDuration
	opAttemptCount
	opUpstreamHost
	opUpstreamCluster
	opDownstreamLocalAddress
	opDownstreamLocalAddressNoPort
	opDownstreamLocalPort
	opDownstreamRemoteAddress
	opDownstreamRemoteAddressNoPort
	opDownstreamDirectRemoteAddress
	opDownstreamDirectRemoteAddressNoPort
	opRequestedServerName
	opRouteName
	opDownstreamTLSVersion
	opDownstreamPeerURISAN
	opDynamicMetadata
	opStaticMetadata
	opConstant // HOSTNAME, ENVIRONMENT: fixed when the format compiles
	opUnset    // known to Envoy, not tracked by the gateway: always "-"
)

// valueKind says how an operator's value renders in typed JSON.
type valueKind uint8

const (
	unset  valueKind = iota // "-" in text, null in typed JSON
	str                     // a JSON string
	number                  // a JSON number
	raw                     // JSON text as appended (metadata values)
)

// operator is one compiled command operator.
type operator struct {
	kind      opKind
	name      string
	hdr, alt  string // header names of REQ/RESP/TRAILER
	maxLen    int    // 0: no limit
	startTime timeFormat
	ns        string   // metadata namespace
	path      []string // metadata keys
	// static finds the resource metadata a METADATA, CLUSTER_METADATA
	// or UPSTREAM_METADATA operator reads.
	static   func(*filters.Exchange) (*corev3.Metadata, bool)
	constant string
}

// simple maps the operators that take no argument to their kind.
var simple = map[string]opKind{
	"PROTOCOL":                       opProtocol,
	"RESPONSE_CODE":                  opResponseCode,
	"RESPONSE_CODE_DETAILS":          opResponseCodeDetails,
	"RESPONSE_FLAGS":                 opResponseFlags,
	"BYTES_RECEIVED":                 opBytesReceived,
	"BYTES_SENT":                     opBytesSent,
	"DURATION":                       opDuration,
	"UPSTREAM_REQUEST_ATTEMPT_COUNT": opAttemptCount,
	"UPSTREAM_HOST":                  opUpstreamHost,
	"UPSTREAM_CLUSTER":               opUpstreamCluster,
	// The same name: StreamInfo keeps the cluster's name, not its
	// alt_stat_name.
	"UPSTREAM_CLUSTER_RAW":                   opUpstreamCluster,
	"DOWNSTREAM_LOCAL_ADDRESS":               opDownstreamLocalAddress,
	"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":  opDownstreamLocalAddressNoPort,
	"DOWNSTREAM_LOCAL_PORT":                  opDownstreamLocalPort,
	"DOWNSTREAM_REMOTE_ADDRESS":              opDownstreamRemoteAddress,
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": opDownstreamRemoteAddressNoPort,
	// The socket's peer, whatever the PROXY protocol or
	// x-forwarded-for made the remote address.
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS":              opDownstreamDirectRemoteAddress,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT": opDownstreamDirectRemoteAddressNoPort,
	"REQUESTED_SERVER_NAME":                         opRequestedServerName,
	"ROUTE_NAME":                                    opRouteName,
	"DOWNSTREAM_TLS_VERSION":                        opDownstreamTLSVersion,
	"DOWNSTREAM_PEER_URI_SAN":                       opDownstreamPeerURISAN,
	"HOSTNAME":                                      opConstant,
	"UPSTREAM_LOCAL_ADDRESS":                        opUnset,
	"REQUEST_DURATION":                              opUnset,
	"RESPONSE_DURATION":                             opUnset,
	"CONNECTION_TERMINATION_DETAILS":                opUnset,
	"UPSTREAM_TRANSPORT_FAILURE_REASON":             opUnset,
}

func newOperator(name, arg string, hasArg bool, maxLen int) (*operator, error) {
	op := &operator{name: name, maxLen: maxLen}
	var err error
	switch name {
	case "REQ", "REQUEST_HEADER", "REQ_WITHOUT_QUERY", "RESP", "RESPONSE_HEADER", "TRAILER", "RESPONSE_TRAILER":
		if op.hdr, op.alt, err = headerNames(name, arg); err != nil {
			return nil, err
		}
		switch name {
		case "REQ", "REQUEST_HEADER":
			op.kind = opReqHeader
		case "REQ_WITHOUT_QUERY":
			op.kind = opReqWithoutQuery
		case "RESP", "RESPONSE_HEADER":
			op.kind = opRespHeader
		default:
			op.kind = opRespTrailer
		}
		return op, nil
	case "START_TIME":
		op.kind = opStartTime
		if hasArg && arg != "" {
			if op.startTime, err = compileTime(arg); err != nil {
				return nil, fmt.Errorf("%%START_TIME(%s)%%: %w", arg, err)
			}
		}
		return op, nil
	case "DYNAMIC_METADATA":
		parts := strings.Split(arg, ":")
		if parts[0] == "" {
			return nil, fmt.Errorf("%%DYNAMIC_METADATA%%: want (NAMESPACE[:KEY...])")
		}
		op.kind, op.ns, op.path = opDynamicMetadata, parts[0], parts[1:]
		return op, nil
	case "METADATA":
		typ, rest, _ := strings.Cut(arg, ":")
		if typ == "DYNAMIC" {
			return newOperator("DYNAMIC_METADATA", rest, true, maxLen)
		}
		lookup, ok := staticMetadata[typ]
		parts := strings.Split(rest, ":")
		if !ok || parts[0] == "" {
			return nil, fmt.Errorf("%%METADATA%%: want (TYPE:NAMESPACE[:KEY...]), TYPE one of DYNAMIC, CLUSTER, ROUTE, UPSTREAM_HOST, LISTENER, VIRTUAL_HOST")
		}
		op.kind, op.static, op.ns, op.path = opStaticMetadata, lookup, parts[0], parts[1:]
		return op, nil
	case "CLUSTER_METADATA", "UPSTREAM_METADATA":
		parts := strings.Split(arg, ":")
		if parts[0] == "" {
			return nil, fmt.Errorf("%%%s%%: want (NAMESPACE[:KEY...])", name)
		}
		op.kind, op.ns, op.path, op.static = opStaticMetadata, parts[0], parts[1:], xdsmeta.Cluster
		if name == "UPSTREAM_METADATA" {
			op.static = xdsmeta.UpstreamHost
		}
		return op, nil
	case "ENVIRONMENT":
		if arg == "" {
			return nil, fmt.Errorf("%%ENVIRONMENT%%: want (VARIABLE)")
		}
		op.kind, op.constant = opConstant, os.Getenv(arg)
		return op, nil
	}
	kind, ok := simple[name]
	if !ok {
		return nil, fmt.Errorf("unknown command operator %%%s%%", name)
	}
	if hasArg {
		return nil, fmt.Errorf("command operator %%%s%% takes no argument", name)
	}
	op.kind = kind
	if name == "HOSTNAME" {
		op.constant, _ = os.Hostname()
	}
	return op, nil
}

// appendValue appends the operator's value, untruncated and unescaped,
// and says what kind it is; an unset value appends nothing.
func (o *operator) appendValue(dst []byte, x *filters.Exchange, end time.Time) ([]byte, valueKind) {
	in := &x.Info
	switch o.kind {
	case opStartTime:
		if in.Start.IsZero() {
			return dst, unset
		}
		if o.startTime == nil {
			return appendISO8601(dst, in.Start.UTC()), str
		}
		return o.startTime.append(dst, in.Start.UTC()), str
	case opReqHeader, opReqWithoutQuery:
		v, ok := requestHeader(x, o.hdr)
		if !ok && o.alt != "" {
			v, ok = requestHeader(x, o.alt)
		}
		if !ok {
			return dst, unset
		}
		if o.kind == opReqWithoutQuery {
			if i := strings.IndexByte(v, '?'); i >= 0 {
				v = v[:i]
			}
		}
		return append(dst, v...), str
	case opRespHeader:
		for _, h := range [2]string{o.hdr, o.alt} {
			if h == ":status" {
				if s := responseCode(x); s != 0 {
					return strconv.AppendInt(dst, int64(s), 10), str
				}
			} else if vs := x.Response.Header[h]; h != "" && len(vs) > 0 {
				return append(dst, vs[0]...), str
			}
		}
		return dst, unset
	case opRespTrailer:
		for _, h := range [2]string{o.hdr, o.alt} {
			if vs := x.Response.Trailer[h]; h != "" && len(vs) > 0 {
				return append(dst, vs[0]...), str
			}
		}
		return dst, unset
	case opProtocol:
		return appendString(dst, x.Request.Protocol)
	case opResponseCode:
		return strconv.AppendInt(dst, int64(responseCode(x)), 10), number
	case opResponseCodeDetails:
		return appendString(dst, in.ResponseCodeDetails)
	case opResponseFlags:
		if len(in.ResponseFlags) == 0 {
			return dst, unset
		}
		for i, f := range in.ResponseFlags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, f...)
		}
		return dst, str
	case opBytesReceived:
		return strconv.AppendInt(dst, in.BytesReceived, 10), number
	case opBytesSent:
		return strconv.AppendInt(dst, in.BytesSent, 10), number
	case opDuration:
		if in.Start.IsZero() {
			return dst, unset
		}
		return strconv.AppendInt(dst, end.Sub(in.Start).Milliseconds(), 10), number
	case opAttemptCount:
		return strconv.AppendInt(dst, int64(in.Attempts), 10), number
	case opUpstreamHost:
		return appendString(dst, in.UpstreamHost)
	case opUpstreamCluster:
		return appendString(dst, in.UpstreamCluster)
	case opDownstreamLocalAddress:
		return appendAddrPort(dst, x.Downstream.LocalAddr)
	case opDownstreamLocalAddressNoPort:
		return appendAddr(dst, x.Downstream.LocalAddr)
	case opDownstreamLocalPort:
		if !x.Downstream.LocalAddr.IsValid() {
			return dst, unset
		}
		return strconv.AppendUint(dst, uint64(x.Downstream.LocalAddr.Port()), 10), str
	case opDownstreamRemoteAddress:
		return appendAddrPort(dst, x.Downstream.RemoteAddr)
	case opDownstreamRemoteAddressNoPort:
		return appendAddr(dst, x.Downstream.RemoteAddr)
	case opDownstreamDirectRemoteAddress:
		return appendAddrPort(dst, directRemote(x))
	case opDownstreamDirectRemoteAddressNoPort:
		return appendAddr(dst, directRemote(x))
	case opRequestedServerName:
		if x.Downstream.TLS == nil {
			return dst, unset
		}
		return appendString(dst, x.Downstream.TLS.ServerName)
	case opRouteName:
		if x.Route == nil {
			return dst, unset
		}
		return appendString(dst, x.Route.Name())
	case opDownstreamTLSVersion:
		if x.Downstream.TLS == nil {
			return dst, unset
		}
		return appendString(dst, tlsVersion(x.Downstream.TLS.Version))
	case opDownstreamPeerURISAN:
		if x.Downstream.TLS == nil || len(x.Downstream.TLS.PeerCertificates) == 0 {
			return dst, unset
		}
		uris := x.Downstream.TLS.PeerCertificates[0].URIs
		if len(uris) == 0 {
			return dst, unset
		}
		for i, u := range uris {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, u.String()...)
		}
		return dst, str
	case opDynamicMetadata:
		ns, ok := x.Metadata[o.ns]
		if !ok {
			return dst, unset
		}
		return appendMetadataValue(dst, ns, o.path)
	case opStaticMetadata:
		m, ok := o.static(x)
		if !ok || m.GetFilterMetadata()[o.ns] == nil {
			return dst, unset
		}
		return appendMetadataValue(dst, m.GetFilterMetadata()[o.ns].AsMap(), o.path)
	case opConstant:
		return appendString(dst, o.constant)
	}
	return dst, unset
}

func appendString(dst []byte, s string) ([]byte, valueKind) {
	if s == "" {
		return dst, unset
	}
	return append(dst, s...), str
}

// responseCode is the status sent downstream, 0 when none was, as
// Envoy's %RESPONSE_CODE%.
func responseCode(x *filters.Exchange) int {
	if x.Response.Status != 0 {
		return x.Response.Status
	}
	if r := x.LocalReply(); r != nil {
		return r.Status
	}
	return 0
}

// requestHeader reads a request header, pseudo-headers from the request
// head; "host" is :authority, as Envoy stores it.
func requestHeader(x *filters.Exchange, name string) (string, bool) {
	switch name {
	case ":method":
		return x.Request.Method, x.Request.Method != ""
	case ":path":
		return x.Request.Path, x.Request.Path != ""
	case ":authority", "Host":
		return x.Request.Authority, x.Request.Authority != ""
	case ":scheme":
		return x.Request.Scheme, x.Request.Scheme != ""
	}
	if vs := x.Request.Header[name]; len(vs) > 0 {
		return vs[0], true
	}
	return "", false
}

// appendAddrPort prints ip:port ([ip]:port for IPv6), IPv4-mapped
// addresses as plain IPv4, as Envoy prints addresses.
func appendAddrPort(dst []byte, ap netip.AddrPort) ([]byte, valueKind) {
	if !ap.IsValid() {
		return dst, unset
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).AppendTo(dst), str
}

func appendAddr(dst []byte, ap netip.AddrPort) ([]byte, valueKind) {
	if !ap.IsValid() {
		return dst, unset
	}
	return ap.Addr().Unmap().AppendTo(dst), str
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return ""
}

// staticMetadata are the resources whose metadata %METADATA(TYPE:...)%
// reads, by TYPE.
var staticMetadata = map[string]func(*filters.Exchange) (*corev3.Metadata, bool){
	"CLUSTER":       xdsmeta.Cluster,
	"ROUTE":         xdsmeta.Route,
	"UPSTREAM_HOST": xdsmeta.UpstreamHost,
	"LISTENER":      xdsmeta.Listener,
	"VIRTUAL_HOST":  xdsmeta.VirtualHost,
}

// appendMetadataValue follows Envoy's metadata formatter: the value at
// path below a namespace's fields prints as is when a string, anything
// else as JSON; a missing one is unset.
func appendMetadataValue(dst []byte, ns map[string]any, path []string) ([]byte, valueKind) {
	var v any = ns
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return dst, unset
		}
		if v, ok = m[k]; !ok {
			return dst, unset
		}
	}
	switch t := v.(type) {
	case nil:
		return dst, unset
	case string:
		return append(dst, t...), str
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, unset
	}
	return append(dst, b...), raw
}

// directRemote is the socket's peer, the remote address when the
// connection did not say (a stream made without a listener).
func directRemote(x *filters.Exchange) netip.AddrPort {
	if a := x.Downstream.DirectRemoteAddr; a.IsValid() {
		return a
	}
	return x.Downstream.RemoteAddr
}
