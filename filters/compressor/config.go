package compressor

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	compressorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"

	"github.com/waygate/waygate/filters/matcher"
)

// defaultMinContentLength is Envoy's default min_content_length.
const defaultMinContentLength = 30

// defaultContentTypes is Envoy's default list of compressible media types,
// with the synonyms its compressor accepts for them
// (source/extensions/filters/http/common/compressor/compressor.cc).
var defaultContentTypes = []string{
	"application/javascript", "application/x-javascript", "text/javascript",
	"text/x-javascript", "text/ecmascript", "text/js", "text/jscript",
	"text/x-js", "application/ecmascript",
	"application/json", "application/x-json",
	"application/xhtml+xml", "image/svg+xml",
	"text/css", "text/html", "text/plain",
	"text/xml", "application/xml",
}

// response is the compiled response direction: the settings that decide
// whether a response is compressed.
type response struct {
	enabled       bool
	minLength     int64
	types         map[string]bool  // media types, lower case; nil: any
	typeMatchers  []matcher.String // content_type_matcher, instead of types
	disableOnEtag bool
	weakenEtag    bool
	removeAccept  bool
	uncompress    map[int]bool
	// legacyStats roots stats without "response." when the config
	// carries no response_direction_config, as Envoy does.
	legacyStats bool
}

// config is a compiled Compressor.
type config struct {
	lib  *library
	resp response
}

// compile validates and compiles a Compressor. Errors name the field.
func compile(pb *compressorv3.Compressor) (*config, error) {
	lib, err := compileLibrary(pb.GetCompressorLibrary(), "compressor_library")
	if err != nil {
		return nil, err
	}
	if rd := pb.GetRequestDirectionConfig(); rd != nil {
		on, err := flag(rd.GetCommonConfig().GetEnabled(), "request_direction_config.common_config.enabled")
		if err != nil {
			return nil, err
		}
		if on {
			return nil, errors.New("request_direction_config.common_config.enabled: request compression is not supported; set enabled.default_value to false or remove request_direction_config")
		}
	}
	c := &config{lib: lib}
	if rd := pb.GetResponseDirectionConfig(); rd != nil {
		c.resp, err = compileResponse(rd.GetCommonConfig(), "response_direction_config.common_config")
		if err != nil {
			return nil, err
		}
		c.resp.disableOnEtag = rd.GetDisableOnEtagHeader()
		c.resp.weakenEtag = rd.GetWeakenEtagOnCompress()
		c.resp.removeAccept = rd.GetRemoveAcceptEncodingHeader()
		for i, code := range rd.GetUncompressibleResponseCodes() {
			if code < 100 || code > 599 {
				return nil, fmt.Errorf("response_direction_config.uncompressible_response_codes[%d]: %d is not a status code within 100-599", i, code)
			}
			if c.resp.uncompress == nil {
				c.resp.uncompress = map[int]bool{}
			}
			c.resp.uncompress[int(code)] = true
		}
		return c, nil
	}
	// The deprecated top-level fields configure the response direction
	// only when response_direction_config is absent.
	legacy := &compressorv3.Compressor_CommonDirectionConfig{
		Enabled:          pb.GetRuntimeEnabled(),
		MinContentLength: pb.GetContentLength(),
		ContentType:      pb.GetContentType(),
	}
	c.resp, err = compileResponse(legacy, "")
	if err != nil {
		return nil, err
	}
	c.resp.disableOnEtag = pb.GetDisableOnEtagHeader()
	c.resp.removeAccept = pb.GetRemoveAcceptEncodingHeader()
	c.resp.legacyStats = true
	return c, nil
}

// compileResponse compiles a CommonDirectionConfig; prefix is its field
// path ("" for the deprecated top-level fields).
func compileResponse(cc *compressorv3.Compressor_CommonDirectionConfig, prefix string) (response, error) {
	path := func(f string) string {
		if prefix == "" {
			return f
		}
		return prefix + "." + f
	}
	r := response{minLength: defaultMinContentLength}
	on, err := flag(cc.GetEnabled(), path("enabled"))
	if err != nil {
		return r, err
	}
	r.enabled = on
	if cc.GetMinContentLength() != nil {
		r.minLength = int64(cc.GetMinContentLength().GetValue())
	}
	switch {
	case len(cc.GetContentTypeMatcher()) > 0:
		for i, m := range cc.GetContentTypeMatcher() {
			sm, err := matcher.CompileString(m)
			if err != nil {
				return r, fmt.Errorf("%s[%d].%w", path("content_type_matcher"), i, err)
			}
			r.typeMatchers = append(r.typeMatchers, sm)
		}
	case len(cc.GetContentType()) > 0:
		r.types = typeSet(cc.GetContentType())
	default:
		r.types = typeSet(defaultContentTypes)
	}
	return r, nil
}

func typeSet(types []string) map[string]bool {
	s := make(map[string]bool, len(types))
	for _, t := range types {
		s[mediaType(t)] = true
	}
	return s
}

// flag reads a RuntimeFeatureFlag: unset means on; the runtime key is
// ignored (Waygate has no runtime layer) and the default value decides.
func flag(f *corev3.RuntimeFeatureFlag, field string) (bool, error) {
	if f == nil {
		return true, nil
	}
	if f.GetDefaultValue() == nil {
		return false, fmt.Errorf("%s.default_value: required when %s is set", field, field)
	}
	return f.GetDefaultValue().GetValue(), nil
}

// mediaType is a content-type without its parameters, lower case.
func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// typeAllowed reports whether content type ct may be compressed. A
// response without a content-type may, as in Envoy.
func (r *response) typeAllowed(ct string) bool {
	if ct == "" {
		return true
	}
	t := mediaType(ct)
	if r.typeMatchers != nil {
		return slices.ContainsFunc(r.typeMatchers, func(m matcher.String) bool { return m.Match(t) })
	}
	return r.types[t]
}

// skip is why a response is not compressed; the empty skip compresses.
type skip string

const (
	skipNone            skip = ""
	skipDisabled        skip = "disabled"
	skipNoBody          skip = "no body"
	skipUpgrade         skip = "upgrade"
	skipTooSmall        skip = "content-length too small"
	skipContentType     skip = "content-type not compressible"
	skipNoTransform     skip = "cache-control no-transform"
	skipEtag            skip = "etag"
	skipContentEncoding skip = "content-encoding present"
	skipTransferEnc     skip = "transfer-encoding compressed"
	skipStatus          skip = "uncompressible status"
	skipAcceptEncoding  skip = "accept-encoding"
)

// decision is what the filter does with a response head.
type decision struct {
	why skip
	// vary is set when the response could have been compressed for a
	// client that accepts the encoding, so caches must key on
	// accept-encoding even when this one was not compressed.
	vary   bool
	accept acceptResult
	// checkedAccept is set when the accept-encoding was weighed (only
	// for a response that could otherwise be compressed, as in Envoy).
	checkedAccept bool
}

// decide applies Envoy's checks, in Envoy's order, to a response head.
// accept holds the request's accept-encoding values (nil: none), end
// whether the head ends the stream.
func (r *response) decide(encoding string, accept []string, status int, h http.Header, end bool) decision {
	switch {
	case !r.enabled:
		return decision{why: skipDisabled}
	case end:
		return decision{why: skipNoBody}
	case status == http.StatusSwitchingProtocols || h.Get("Upgrade") != "":
		return decision{why: skipUpgrade}
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < r.minLength {
			return decision{why: skipTooSmall}
		}
	}
	switch {
	case !r.typeAllowed(h.Get("Content-Type")):
		return decision{why: skipContentType}
	case hasToken(h.Values("Cache-Control"), "no-transform"):
		return decision{why: skipNoTransform}
	case r.disableOnEtag && !r.weakenEtag && h.Get("Etag") != "":
		return decision{why: skipEtag}
	case h.Get("Content-Encoding") != "":
		return decision{why: skipContentEncoding}
	case compressedTransfer(h.Values("Transfer-Encoding")):
		return decision{why: skipTransferEnc}
	case r.uncompress[status]:
		return decision{why: skipStatus}
	}
	d := decision{vary: true, checkedAccept: true, accept: chooseEncoding(accept, encoding)}
	if !d.accept.allowed() {
		d.why = skipAcceptEncoding
	}
	return d
}

// hasToken reports whether comma-separated values hold token, ignoring
// case and directive arguments.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			t, _, _ = strings.Cut(t, "=")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// compressedTransfer reports whether transfer-encoding names a
// compression coding, which would make a second one pointless.
func compressedTransfer(values []string) bool {
	for _, name := range []string{"gzip", "x-gzip", "deflate", "compress", "x-compress", "br", "zstd"} {
		if hasToken(values, name) {
			return true
		}
	}
	return false
}

// routeConfig is a compiled CompressorPerRoute.
type routeConfig struct {
	disabled bool
	// enable is set when overrides.response_direction_config is present,
	// which turns response compression on for the route.
	enable bool
	// removeAccept overrides remove_accept_encoding_header when set.
	removeAccept *bool
	// lib overrides the filter's library when set.
	lib *library
}

// compileRoute compiles a CompressorPerRoute. Errors name the field.
func compileRoute(pb *compressorv3.CompressorPerRoute) (*routeConfig, error) {
	switch o := pb.GetOverride().(type) {
	case *compressorv3.CompressorPerRoute_Disabled:
		return &routeConfig{disabled: o.Disabled}, nil
	case *compressorv3.CompressorPerRoute_Overrides:
		rc := &routeConfig{}
		if rd := o.Overrides.GetResponseDirectionConfig(); rd != nil {
			rc.enable = true
			if v := rd.GetRemoveAcceptEncodingHeader(); v != nil {
				b := v.GetValue()
				rc.removeAccept = &b
			}
		}
		if tc := o.Overrides.GetCompressorLibrary(); tc != nil {
			lib, err := compileLibrary(tc, "overrides.compressor_library")
			if err != nil {
				return nil, err
			}
			rc.lib = lib
		}
		return rc, nil
	}
	return nil, errors.New("override: one of disabled or overrides is required")
}
