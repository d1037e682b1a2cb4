package http1

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// statusError is a request the server refuses before any handler sees
// it: the status and the short reason sent as the body.
type statusError struct {
	code   int
	reason string
}

func (e *statusError) Error() string { return e.reason }

func badRequest(reason string) *statusError {
	return &statusError{code: http.StatusBadRequest, reason: reason}
}

var (
	errObsFold         = badRequest("obsolete line folding in a header field")
	errBareLF          = badRequest("line ended by a bare LF")
	errBadRequestLine  = badRequest("malformed request line")
	errBadMethod       = badRequest("invalid method")
	errBadTarget       = badRequest("invalid request target")
	errBadHeaderName   = badRequest("invalid header field name")
	errBadHeaderValue  = badRequest("invalid header field value")
	errNoHost          = badRequest("missing required Host header")
	errManyHosts       = badRequest("too many Host headers")
	errBadHost         = badRequest("invalid Host header")
	errDupCL           = badRequest("duplicate Content-Length")
	errBadCL           = badRequest("invalid Content-Length")
	errCLAndTE         = badRequest("both Content-Length and Transfer-Encoding")
	errTENotChunked    = badRequest("chunked is not the final transfer coding")
	errTEInHTTP10      = badRequest("Transfer-Encoding in an HTTP/1.0 request")
	errBadTrailerDecl  = badRequest("invalid Trailer header")
	errBadChunk        = badRequest("invalid chunked encoding")
	errUnsupportedTE   = &statusError{code: http.StatusNotImplemented, reason: "unsupported transfer coding"}
	errVersion         = &statusError{code: http.StatusHTTPVersionNotSupported, reason: "unsupported HTTP version"}
	errHeadersTooLarge = &statusError{code: http.StatusRequestHeaderFieldsTooLarge, reason: "request header fields too large"}
	errURITooLong      = &statusError{code: http.StatusRequestURITooLong, reason: "request target too long"}
	errExpectation     = &statusError{code: http.StatusExpectationFailed, reason: "unsupported expectation"}
)

// request is a parsed request head. Its strings are substrings of one
// string holding the whole head, so parsing a head costs one allocation
// for the text, one for the header map and one for the values.
type request struct {
	method, target, proto string
	minor                 int // 0 or 1: HTTP/1.0 or HTTP/1.1
	header                http.Header
	host                  string
	url                   *url.URL // set for the absolute and authority forms, and escaped paths
	contentLength         int64    // -1 when the body is chunked, 0 without a body
	chunked               bool
	close                 bool // the client asked to close after this exchange
	keepAlive             bool // an HTTP/1.0 client asked for keep-alive
	expectContinue        bool
	trailer               http.Header // declared trailer names, nil values
}

// parseHead parses a request head: the request line and the header
// lines, each ended by CRLF, without the empty line that ends the head.
// Line endings were checked while the head was read (see readHead).
// The fields go into r.header if it is set (a connection's map, cleared
// between requests), else into a new map.
//
// It follows RFC 9112 strictly where leniency lets two parsers disagree
// about where a request ends (request smuggling): obs-fold, duplicate or
// malformed Content-Length, Content-Length with Transfer-Encoding, and
// any transfer coding but a single final chunked are refused.
func parseHead(s string, r *request) *statusError {
	line, rest, _ := strings.Cut(s, "\r\n")
	if err := parseRequestLine(line, r); err != nil {
		return err
	}
	n := strings.Count(rest, "\r\n") + 1
	if rest == "" {
		n = 0
	}
	if r.header == nil {
		r.header = make(http.Header, n)
	}
	vals := make([]string, n)
	hosts := 0
	r.contentLength = 0
	var te string
	teSeen, clSeen := false, false
	for i := 0; rest != ""; i++ {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if line == "" {
			return errBadHeaderName
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errObsFold
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !validToken(line[:colon]) {
			return errBadHeaderName
		}
		v := trimOWS(line[colon+1:])
		if !validValue(v) {
			return errBadHeaderValue
		}
		k := canonicalKey(line[:colon])
		switch k {
		case "Host":
			hosts++
			if hosts > 1 {
				return errManyHosts
			}
			if !validHost(v) {
				return errBadHost
			}
			r.host = v
			continue
		case "Content-Length":
			if clSeen {
				return errDupCL
			}
			clSeen = true
			cl, ok := parseContentLength(v)
			if !ok {
				return errBadCL
			}
			r.contentLength = cl
		case "Transfer-Encoding":
			if teSeen {
				te += "," + v
			} else {
				te = v
			}
			teSeen = true
			continue // the server frames the body; handlers see ContentLength -1
		case "Connection":
			forTokens(v, func(t string) {
				switch {
				case strings.EqualFold(t, "close"):
					r.close = true
				case strings.EqualFold(t, "keep-alive"):
					r.keepAlive = true
				}
			})
		case "Expect":
			if !strings.EqualFold(v, "100-continue") {
				return errExpectation
			}
			r.expectContinue = true
		case "Trailer":
			bad := false
			forTokens(v, func(t string) {
				ck := canonicalKey(t)
				if !validToken(t) || ck == "Transfer-Encoding" || ck == "Trailer" || ck == "Content-Length" {
					bad = true
					return
				}
				if r.trailer == nil {
					r.trailer = make(http.Header)
				}
				r.trailer[ck] = nil
			})
			if bad {
				return errBadTrailerDecl
			}
		}
		if prev, ok := r.header[k]; ok {
			r.header[k] = append(prev, v)
			continue
		}
		vals[i] = v
		r.header[k] = vals[i : i+1 : i+1]
	}
	if teSeen {
		if r.minor == 0 {
			return errTEInHTTP10
		}
		if clSeen {
			return errCLAndTE
		}
		if err := checkTransferEncoding(te); err != nil {
			return err
		}
		r.chunked = true
		r.contentLength = -1
	}
	if r.minor == 1 && hosts == 0 {
		return errNoHost
	}
	if r.minor == 0 && !r.keepAlive {
		r.close = true
	}
	if r.minor == 0 {
		r.expectContinue = false
	}
	return parseTarget(r)
}

// parseRequestLine parses method SP request-target SP HTTP-version.
func parseRequestLine(line string, r *request) *statusError {
	sp1 := strings.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errBadRequestLine
	}
	r.method = line[:sp1]
	if !validToken(r.method) {
		return errBadMethod
	}
	rest := line[sp1+1:]
	sp2 := strings.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errBadRequestLine
	}
	r.target = rest[:sp2]
	r.proto = rest[sp2+1:]
	switch r.proto {
	case "HTTP/1.1":
		r.minor = 1
	case "HTTP/1.0":
		r.minor = 0
	default:
		if len(r.proto) == 8 && strings.HasPrefix(r.proto, "HTTP/") && isDigit(r.proto[5]) && r.proto[6] == '.' && isDigit(r.proto[7]) {
			return errVersion
		}
		return errBadRequestLine
	}
	for i := 0; i < len(r.target); i++ {
		if c := r.target[i]; c <= ' ' || c == 0x7f {
			return errBadTarget
		}
	}
	return nil
}

// parseTarget checks the request target's form (RFC 9112 section 3.2)
// and fills the URL when the handler needs more than the raw target.
func parseTarget(r *request) *statusError {
	t := r.target
	switch {
	case r.method == http.MethodConnect && t != "" && t[0] != '/':
		// authority-form
		if !validHost(t) {
			return errBadTarget
		}
		r.url = &url.URL{Host: t}
		return nil
	case t[0] == '/':
		if strings.IndexByte(t, '%') < 0 {
			return nil // origin-form the handler reads as RequestURI
		}
	case t == "*":
		return nil
	}
	u, err := url.ParseRequestURI(t)
	if err != nil {
		return errBadTarget
	}
	if u.Scheme != "" && !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https") {
		return errBadTarget
	}
	if u.Host != "" {
		if !validHost(u.Host) {
			return errBadTarget
		}
		r.host = u.Host
	}
	r.url = u
	return nil
}

// checkTransferEncoding accepts exactly one chunked coding, applied
// last (RFC 9112 section 6.1): any other coding is not implemented, and
// a message without a final chunked has no reliable length.
func checkTransferEncoding(te string) *statusError {
	var codings []string
	bad := false
	forTokens(te, func(t string) {
		if !validToken(t) {
			bad = true
		}
		codings = append(codings, t)
	})
	if bad || len(codings) == 0 || !strings.EqualFold(codings[len(codings)-1], "chunked") {
		return errTENotChunked
	}
	for _, c := range codings[:len(codings)-1] {
		if strings.EqualFold(c, "chunked") {
			return errTENotChunked // chunked twice
		}
	}
	if len(codings) > 1 {
		return errUnsupportedTE
	}
	return nil
}

// forTokens calls f for each element of a comma-separated list,
// trimmed, skipping empty elements (RFC 9110 section 5.6.1).
func forTokens(v string, f func(string)) {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if t = trimOWS(t); t != "" {
			f(t)
		}
	}
}

func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// tokenChars marks the tchar bytes of RFC 9110 section 5.6.2.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

// validValue accepts field-content: visible ASCII, obs-text, SP and HTAB
// (RFC 9110 section 5.5). A CR, LF or NUL is refused, never repaired.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost accepts the characters of uri-host [ ":" port ], IP-literals
// included, as net/http does.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if tokenChars[c] || c == ':' || c == '[' || c == ']' || c >= 0x80 {
			continue
		}
		switch c {
		case '(', ')', ',', ';', '=', '@':
			continue
		}
		return false
	}
	return true
}

// CanonicalKey returns the canonical form of a header name, as
// textproto.CanonicalMIMEHeaderKey does, without allocating for names
// already canonical and for the common ones sent in lower case (by
// HTTP/2-minded clients and load generators). The upstream connection
// pool parses response heads with it too.
func CanonicalKey(name string) string { return canonicalKey(name) }

func canonicalKey(name string) string {
	if k, ok := commonKey(name); ok {
		return k
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return textproto.CanonicalMIMEHeaderKey(name)
		}
		upper = c == '-'
	}
	return name
}

// commonHeaders are the names commonKey interns, by length.
var commonHeaders = func() (t [32][]string) {
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
		"Cookie", "Date", "Expect", "Forwarded", "Host", "If-Match", "If-Modified-Since",
		"If-None-Match", "Keep-Alive", "Origin", "Pragma", "Range", "Referer", "Te",
		"Trailer", "Transfer-Encoding", "Upgrade", "User-Agent", "Via", "X-Forwarded-For",
		"X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id", "X-Real-Ip",
		"Sec-Websocket-Key", "Sec-Websocket-Version", "Grpc-Timeout", "Traceparent",
		"X-B3-Traceid", "X-B3-Spanid", "X-B3-Sampled", "X-Envoy-Expected-Rq-Timeout-Ms",
		"X-Envoy-Upstream-Rq-Timeout-Ms", "X-Envoy-Attempt-Count", "X-Envoy-External-Address",
		"Server", "Etag", "Last-Modified", "Accept-Ranges", "Set-Cookie", "Location", "Vary",
		"Expires", "Age", "Access-Control-Allow-Origin", "Strict-Transport-Security",
		"X-Content-Type-Options", "Grpc-Status", "Grpc-Message", "Content-Range",
	} {
		if len(k) < len(t) {
			t[len(k)] = append(t[len(k)], k)
		}
	}
	return t
}()

func commonKey(name string) (string, bool) {
	if len(name) >= len(commonHeaders) {
		return "", false
	}
	for _, k := range commonHeaders[len(name)] {
		if equalFoldASCII(k, name) {
			return k, true
		}
	}
	return "", false
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
