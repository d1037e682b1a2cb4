package matcher

import (
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
)

// pseudo names a request pseudo-header, which filters.Request keeps in
// fields rather than in Header.
type pseudo uint8

const (
	notPseudo pseudo = iota
	pseudoMethod
	pseudoAuthority
	pseudoPath
	pseudoScheme
)

// HeaderKey is a header name resolved once at compile time to where the
// value lives in a filters.Request.
type HeaderKey struct {
	canon  string // net/http canonical key, for Header lookups
	pseudo pseudo
}

// NewHeaderKey resolves an Envoy (lower-case) header name. Host is the
// :authority in Envoy and lives in Request.Authority here.
func NewHeaderKey(name string) HeaderKey {
	switch strings.ToLower(name) {
	case ":method":
		return HeaderKey{pseudo: pseudoMethod}
	case ":authority", "host":
		return HeaderKey{pseudo: pseudoAuthority}
	case ":path":
		return HeaderKey{pseudo: pseudoPath}
	case ":scheme":
		return HeaderKey{pseudo: pseudoScheme}
	}
	return HeaderKey{canon: textproto.CanonicalMIMEHeaderKey(name)}
}

// Get returns the header's value, the values of a repeated header joined
// with "," as Envoy matches them, and whether it is present.
func (k HeaderKey) Get(req *filters.Request) (string, bool) {
	switch k.pseudo {
	case pseudoMethod:
		return req.Method, req.Method != ""
	case pseudoAuthority:
		return req.Authority, req.Authority != ""
	case pseudoPath:
		return req.Path, req.Path != ""
	case pseudoScheme:
		return req.Scheme, req.Scheme != ""
	}
	vs := req.Header[k.canon]
	switch len(vs) {
	case 0:
		return "", false
	case 1:
		return vs[0], true
	}
	return strings.Join(vs, ","), true
}

// First returns the first value of the header, as Envoy's %REQ()% does.
func (k HeaderKey) First(req *filters.Request) (string, bool) {
	if k.pseudo != notPseudo {
		return k.Get(req)
	}
	vs := req.Header[k.canon]
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

type headerMatchKind uint8

const (
	hmExact   headerMatchKind = iota // deprecated exact_match: empty matches anything
	hmString                         // string_match and the deprecated prefix/suffix/contains/regex forms
	hmRange                          // range_match
	hmPresent                        // present_match, or no specifier at all
)

// Header is a compiled envoy.config.route.v3.HeaderMatcher.
type Header struct {
	key            HeaderKey
	kind           headerMatchKind
	exact          string
	str            String
	start, end     int64
	present        bool
	invert         bool
	missingAsEmpty bool
}

// CompileHeader compiles one HeaderMatcher; errors name the field.
func CompileHeader(h *routev3.HeaderMatcher) (Header, error) {
	if h.GetName() == "" {
		return Header{}, errors.New("name: must not be empty")
	}
	m := Header{
		key:            NewHeaderKey(h.GetName()),
		invert:         h.GetInvertMatch(),
		missingAsEmpty: h.GetTreatMissingHeaderAsEmpty(),
	}
	var err error
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_ExactMatch:
		m.kind, m.exact = hmExact, s.ExactMatch
	case *routev3.HeaderMatcher_SafeRegexMatch:
		m.kind = hmString
		m.str.kind = strRegex
		if m.str.re, err = CompileRegex(s.SafeRegexMatch); err != nil {
			return m, fmt.Errorf("safe_regex_match: %w", err)
		}
	case *routev3.HeaderMatcher_RangeMatch:
		if s.RangeMatch == nil || s.RangeMatch.GetStart() >= s.RangeMatch.GetEnd() {
			return m, errors.New("range_match: start must be less than end")
		}
		m.kind, m.start, m.end = hmRange, s.RangeMatch.GetStart(), s.RangeMatch.GetEnd()
	case *routev3.HeaderMatcher_PresentMatch:
		m.kind, m.present = hmPresent, s.PresentMatch
	case *routev3.HeaderMatcher_PrefixMatch:
		m.kind, m.str = hmString, String{kind: strPrefix, value: s.PrefixMatch}
	case *routev3.HeaderMatcher_SuffixMatch:
		m.kind, m.str = hmString, String{kind: strSuffix, value: s.SuffixMatch}
	case *routev3.HeaderMatcher_ContainsMatch:
		m.kind, m.str = hmString, String{kind: strContains, value: s.ContainsMatch}
	case *routev3.HeaderMatcher_StringMatch:
		m.kind = hmString
		if m.str, err = CompileString(s.StringMatch); err != nil {
			return m, fmt.Errorf("string_match.%w", err)
		}
	case nil:
		// No specifier is a presence check, as in Envoy.
		m.kind, m.present = hmPresent, true
	}
	return m, nil
}

// Match follows Envoy's HeaderUtility::matchHeaders: a missing header only
// satisfies present_match=false (or its inversion), unless
// treat_missing_header_as_empty makes it the empty string.
func (m *Header) Match(req *filters.Request) bool {
	v, ok := m.key.Get(req)
	if !ok && !m.missingAsEmpty {
		if m.invert {
			return m.kind == hmPresent && m.present
		}
		return m.kind == hmPresent && !m.present
	}
	var r bool
	switch m.kind {
	case hmExact:
		r = m.exact == "" || v == m.exact
	case hmString:
		r = m.str.Match(v)
	case hmRange:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		r = err == nil && n >= m.start && n < m.end
	case hmPresent:
		r = m.present
	}
	return r != m.invert
}

// MatchAll reports whether every matcher matches (true for none).
func MatchAll(ms []Header, req *filters.Request) bool {
	for i := range ms {
		if !ms[i].Match(req) {
			return false
		}
	}
	return true
}

// CompileHeaders compiles a list; errors start with field[i].
func CompileHeaders(hs []*routev3.HeaderMatcher, field string) ([]Header, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	out := make([]Header, len(hs))
	for i, h := range hs {
		m, err := CompileHeader(h)
		if err != nil {
			return nil, fmt.Errorf("%s[%d].%w", field, i, err)
		}
		out[i] = m
	}
	return out, nil
}

// Canonical is the net/http canonical form of the name, "" for
// pseudo-headers.
func (k HeaderKey) Canonical() string { return k.canon }

// Values returns every value of the header (one for pseudo-headers).
func (k HeaderKey) Values(req *filters.Request) []string {
	if k.pseudo != notPseudo {
		if v, ok := k.Get(req); ok {
			return []string{v}
		}
		return nil
	}
	return req.Header[k.canon]
}
