package hcm

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strings"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// hopByHop are the connection-specific headers a proxy never forwards
// (RFC 9110 section 7.6.1).
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te"}

// stripHopByHop removes hop-by-hop headers, including those the
// Connection header names. TE: trailers survives (gRPC needs it). The
// Upgrade and Connection headers survive when upgrade names an upgrade
// the listener allows.
func stripHopByHop(h http.Header, keepUpgrade bool) {
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" && !(keepUpgrade && strings.EqualFold(f, "upgrade")) {
				h.Del(f)
			}
		}
	}
	// Of TE, only "trailers" goes on, as in Envoy: it is what gRPC
	// needs, and other transfer codings are the hop's business.
	trailers := headerHasToken(h, "Te", "trailers")
	for _, k := range hopByHop {
		if keepUpgrade && (k == "Connection" || k == "Upgrade") {
			continue
		}
		delete(h, k)
	}
	if trailers {
		h.Set("Te", "trailers")
	}
	if keepUpgrade {
		h.Set("Connection", "Upgrade")
	}
}

// newRequestID returns a random UUID (version 4) for x-request-id. The
// source is math/rand/v2's per-thread generator: request ids need to be
// unique, not secret.
func newRequestID() string {
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(a >> (8 * i))
		b[8+i] = byte(c >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// normalizePath applies the HCM's path normalization to the path part of
// p (the query is left alone). ok is false when the request must be
// rejected (400), redirect true when Envoy would redirect to the
// normalized path (UNESCAPE_AND_REDIRECT).
func (c *Config) normalizePathOf(p string) (out string, redirect, ok bool) {
	path, query := p, ""
	if i := strings.IndexByte(p, '?'); i >= 0 {
		path, query = p[:i], p[i:]
	}
	orig := path
	if c.escapedSlashes != hcmv3.HttpConnectionManager_KEEP_UNCHANGED &&
		c.escapedSlashes != hcmv3.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT &&
		containsEscapedSlash(path) {
		switch c.escapedSlashes {
		case hcmv3.HttpConnectionManager_REJECT_REQUEST:
			return "", false, false
		case hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT:
			redirect = true
			path = unescapeSlashes(path)
		case hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD:
			path = unescapeSlashes(path)
		}
	}
	if c.normalizePath {
		path = removeDotSegments(path)
	}
	if c.mergeSlashes {
		path = mergeSlashes(path)
	}
	if path == orig {
		return p, false, true
	}
	return path + query, redirect, true
}

func containsEscapedSlash(p string) bool {
	for i := 0; i+2 < len(p); i++ {
		if p[i] == '%' && p[i+1] == '2' && (p[i+2] == 'f' || p[i+2] == 'F') {
			return true
		}
		if p[i] == '%' && p[i+1] == '5' && (p[i+2] == 'c' || p[i+2] == 'C') {
			return true
		}
	}
	return false
}

func unescapeSlashes(p string) string {
	r := strings.NewReplacer("%2F", "/", "%2f", "/", "%5C", "\\", "%5c", "\\")
	return r.Replace(p)
}

// removeDotSegments is RFC 3986 section 5.2.4, keeping a trailing slash.
// Envoy's normalize_path also turns backslashes into slashes and, as the
// URL canonicalizer it uses, takes percent-encoded dots ("%2e%2E") for
// dots: otherwise "/public/%2e%2e/admin" would reach a route or an RBAC
// rule written for "/admin" under another name.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") && !strings.Contains(p, "\\") && !hasEncodedDot(p) {
		return p
	}
	p = strings.ReplaceAll(p, "\\", "/")
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		switch dots(s) {
		case 1:
			if i == len(segs)-1 {
				out = append(out, "")
			}
		case 2:
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if i == len(segs)-1 {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	r := strings.Join(out, "/")
	if r == "" || r[0] != '/' {
		r = "/" + r
	}
	return r
}

// dots returns 1 for a "." segment, 2 for "..", each dot possibly
// percent-encoded, and 0 for any other segment.
func dots(seg string) int {
	n := 0
	for len(seg) > 0 {
		switch {
		case seg[0] == '.':
			seg = seg[1:]
		case len(seg) >= 3 && seg[0] == '%' && seg[1] == '2' && (seg[2] == 'e' || seg[2] == 'E'):
			seg = seg[3:]
		default:
			return 0
		}
		if n++; n > 2 {
			return 0
		}
	}
	return n
}

func hasEncodedDot(p string) bool {
	for i := 0; i+2 < len(p); i++ {
		if p[i] == '%' && p[i+1] == '2' && (p[i+2] == 'e' || p[i+2] == 'E') {
			return true
		}
	}
	return false
}

func mergeSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	prev := byte(0)
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && prev == '/' {
			continue
		}
		prev = p[i]
		b.WriteByte(p[i])
	}
	return b.String()
}

// stripPort removes a :port from an authority, minding IPv6 literals.
func stripPort(authority string) string {
	i := strings.LastIndexByte(authority, ':')
	if i < 0 || strings.HasSuffix(authority, "]") {
		return authority
	}
	return authority[:i]
}
