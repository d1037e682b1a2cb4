package wasm

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/waygate/waygate/filters"
)

// Attributes of an HTTP stream that the router and the connection
// manager record in the exchange's StreamInfo, serialized as Envoy's
// Wasm host does.
// https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes

// upstreamProperty reads upstream.address, upstream.port and
// upstream.request_attempt_count once the router picked an endpoint.
func upstreamProperty(x *filters.Exchange, seg []string) ([]byte, bool) {
	if len(seg) != 1 || x.Info.UpstreamHost == "" {
		return nil, false
	}
	switch seg[0] {
	case "address":
		return []byte(x.Info.UpstreamHost), true
	case "port":
		ap, err := netip.ParseAddrPort(x.Info.UpstreamHost)
		if err != nil {
			return nil, false
		}
		return int64Bytes(int64(ap.Port())), true
	case "request_attempt_count":
		return int64Bytes(int64(x.Info.Attempts)), true
	}
	return nil, false
}

// responseFlagBit is Envoy's bit for each response flag: response.flags
// is the bit vector of the stream's flags.
var responseFlagBit = map[string]uint64{
	"LH": 0x1, "UH": 0x2, "UT": 0x4, "LR": 0x8, "UR": 0x10, "UF": 0x20,
	"UC": 0x40, "UO": 0x80, "NR": 0x100, "DI": 0x200, "FI": 0x400,
	"RL": 0x800, "UAEX": 0x1000, "RLSE": 0x2000, "DC": 0x4000,
	"URX": 0x8000, "SI": 0x10000, "IH": 0x20000, "DPE": 0x40000,
	"UMSDR": 0x80000, "RFCF": 0x100000, "NFCF": 0x200000, "DT": 0x400000,
	"UPE": 0x800000, "NC": 0x1000000, "OM": 0x2000000, "DF": 0x4000000,
	"DO": 0x8000000, "DR": 0x10000000,
}

func responseFlagBits(flags []string) uint64 {
	var bits uint64
	for _, f := range flags {
		bits |= responseFlagBit[f]
	}
	return bits
}

// grpcStatusProperty is response.grpc_status as Envoy finds it: the
// grpc-status trailer, else the header, else the HTTP status mapped as
// gRPC maps it.
// https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
func grpcStatusProperty(x *filters.Exchange) ([]byte, bool) {
	for _, h := range []http.Header{x.Response.Trailer, x.Response.Header} {
		if v := h.Get("Grpc-Status"); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, false
			}
			return int64Bytes(int64(n)), true
		}
	}
	code := int64(2) // UNKNOWN
	switch x.Response.Status {
	case 400:
		code = 13 // INTERNAL
	case 401:
		code = 16 // UNAUTHENTICATED
	case 403:
		code = 7 // PERMISSION_DENIED
	case 404:
		code = 12 // UNIMPLEMENTED
	case 429, 502, 503, 504:
		code = 14 // UNAVAILABLE
	}
	return int64Bytes(code), true
}

// headerBytes is the size Envoy counts for a header map in the
// total_size attributes: each name and value.
func headerBytes(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v))
		}
	}
	return n
}

// requestLineBytes is the size of the request's pseudo-headers, which
// Envoy keeps in the header map.
func requestLineBytes(r *filters.Request) int64 {
	return int64(len(":authority") + len(r.Authority) + len(":path") + len(r.Path) +
		len(":method") + len(r.Method) + len(":scheme") + len(r.Scheme))
}

// peerCertificateProperty reads the downstream peer certificate's
// attributes: subject (RFC 2253), first DNS and URI SAN, and the hex
// SHA-256 of its DER. A TLS connection without a client certificate has
// an empty subject and digest and no SANs.
func peerCertificateProperty(x *filters.Exchange, name string) ([]byte, bool) {
	t := x.Downstream.TLS
	if t == nil {
		return nil, false
	}
	var c *x509.Certificate
	if len(t.PeerCertificates) > 0 {
		c = t.PeerCertificates[0]
	}
	switch name {
	case "subject_peer_certificate":
		if c == nil {
			return []byte{}, true
		}
		return []byte(c.Subject.String()), true
	case "sha256_peer_certificate_digest":
		if c == nil {
			return []byte{}, true
		}
		sum := sha256.Sum256(c.Raw)
		return []byte(hex.EncodeToString(sum[:])), true
	case "dns_san_peer_certificate":
		if c == nil || len(c.DNSNames) == 0 {
			return nil, false
		}
		return []byte(c.DNSNames[0]), true
	case "uri_san_peer_certificate":
		if c == nil || len(c.URIs) == 0 {
			return nil, false
		}
		return []byte(c.URIs[0].String()), true
	}
	return nil, false
}

// headersProperty reads a header map attribute (request.headers,
// response.headers, response.trailers) as Envoy's CEL view of it: one
// entry per name, several values joined with ",", and a name read
// alone the same way.
func headersProperty(f fieldMap, seg []string) ([]byte, bool) {
	switch len(seg) {
	case 0:
	case 1:
		val, ok := f.get(seg[0])
		return []byte(val), ok
	default:
		return nil, false
	}
	var names []string
	joined := map[string]string{}
	for k, v := range f.all() {
		k = strings.ToLower(k)
		if prev, ok := joined[k]; ok {
			joined[k] = prev + "," + v
			continue
		}
		names = append(names, k)
		joined[k] = v
	}
	pairs := make([][2]string, len(names))
	for i, k := range names {
		pairs[i] = [2]string{k, joined[k]}
	}
	return encodeRawPairs(pairs), true
}
