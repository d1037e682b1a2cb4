package compressor

import (
	"strconv"
	"strings"
)

// coding is one entry of an accept-encoding header: a content coding
// (lower case) and its weight.
type coding struct {
	name string
	q    float64
}

// parseAcceptEncoding parses accept-encoding field values (RFC 9110
// section 12.5.3): comma-separated codings, each with an optional
// ";q=weight" (0 to 1, at most three decimals). Entries that are not
// well formed (an empty or non-token name, a bad weight) are dropped;
// bad reports that at least one was. Parameters other than q are
// ignored.
func parseAcceptEncoding(values []string) (codings []coding, bad bool) {
	for _, v := range values {
		for entry := range strings.SplitSeq(v, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue // empty list elements are allowed and ignored
			}
			name, params, _ := strings.Cut(entry, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if !isToken(name) {
				bad = true
				continue
			}
			c := coding{name: name, q: 1}
			ok := true
			for p := range strings.SplitSeq(params, ";") {
				p = strings.TrimSpace(p)
				if p == "" {
					continue
				}
				k, val, _ := strings.Cut(p, "=")
				if !strings.EqualFold(strings.TrimSpace(k), "q") {
					continue
				}
				q, err := parseWeight(strings.TrimSpace(val))
				if err {
					ok = false
					break
				}
				c.q = q
			}
			if !ok {
				bad = true
				continue
			}
			codings = append(codings, c)
		}
	}
	return codings, bad
}

// parseWeight parses a qvalue: "0" or "1" with up to three decimals, or
// "0." / "1." forms the RFC allows (1 only with zeros after the point).
func parseWeight(s string) (float64, bool) {
	if s == "" || len(s) > 5 {
		return 0, true
	}
	if s[0] != '0' && s[0] != '1' {
		return 0, true
	}
	if len(s) > 1 {
		if s[1] != '.' {
			return 0, true
		}
		for _, c := range s[2:] {
			if c < '0' || c > '9' || (s[0] == '1' && c != '0') {
				return 0, true
			}
		}
	}
	q, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, true
	}
	return q, false
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// acceptResult is how a request's accept-encoding decided, named after
// the response stats Envoy counts for it.
type acceptResult uint8

const (
	// noAcceptHeader: the request had no accept-encoding.
	noAcceptHeader acceptResult = iota
	// headerCompressorUsed: the library's encoding is named with q > 0.
	headerCompressorUsed
	// headerWildcard: "*" allows the encoding, which is not named.
	headerWildcard
	// headerIdentity: identity is preferred (a higher weight than the
	// encoding), or is all the client named that the filter knows.
	headerIdentity
	// headerNotValid: the encoding is refused (q=0 for it, or for "*"
	// when it is not named), or the header names nothing usable.
	headerNotValid
)

func (r acceptResult) String() string {
	switch r {
	case noAcceptHeader:
		return "no_accept_header"
	case headerCompressorUsed:
		return "header_compressor_used"
	case headerWildcard:
		return "header_wildcard"
	case headerIdentity:
		return "header_identity"
	}
	return "header_not_valid"
}

// allowed reports whether the result lets the filter compress.
func (r acceptResult) allowed() bool {
	return r == headerCompressorUsed || r == headerWildcard
}

// chooseEncoding decides whether accept-encoding values (nil: no header)
// allow encoding. The encoding's own weight wins over "*"'s; identity
// wins only with a weight strictly higher than the encoding's, as Envoy
// prefers the compressor on a tie.
func chooseEncoding(values []string, encoding string) acceptResult {
	if values == nil {
		return noAcceptHeader
	}
	codings, _ := parseAcceptEncoding(values)
	var (
		own, star, identity          float64
		hasOwn, hasStar, hasIdentity bool
	)
	for _, c := range codings {
		switch c.name {
		case encoding:
			if !hasOwn {
				own, hasOwn = c.q, true
			}
		case "*":
			if !hasStar {
				star, hasStar = c.q, true
			}
		case "identity":
			if !hasIdentity {
				identity, hasIdentity = c.q, true
			}
		}
	}
	q, res := 0.0, headerNotValid
	switch {
	case hasOwn:
		q, res = own, headerCompressorUsed
	case hasStar:
		q, res = star, headerWildcard
	}
	if hasIdentity && identity > q {
		return headerIdentity
	}
	if q <= 0 {
		return headerNotValid
	}
	return res
}
