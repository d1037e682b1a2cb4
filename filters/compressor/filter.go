package compressor

import (
	"net/http"
	"strings"

	"github.com/waygate/waygate/filters"
)

// filter is one stream's compressor.
type filter struct {
	f     *Factory
	resp  response
	lib   *library
	stats *counters

	// accept is the request's accept-encoding, nil when it had none,
	// read before remove_accept_encoding_header takes it away.
	accept []string

	enc encoder
	out sliceWriter
}

// setup applies the route's CompressorPerRoute to the filter's config
// and reports whether the filter takes part.
func (fl *filter) setup(x *filters.Exchange) bool {
	f := fl.f
	fl.resp, fl.lib, fl.stats = f.cfg.resp, f.cfg.lib, f.stats
	var rc *routeConfig
	if r := x.MatchedRoute(); r != nil {
		rc, _ = r.PerFilterConfig(FilterName).(*routeConfig)
	}
	if rc != nil {
		if rc.disabled {
			return false
		}
		if rc.enable {
			fl.resp.enabled = true
		}
		if rc.removeAccept != nil {
			fl.resp.removeAccept = *rc.removeAccept
		}
		if rc.lib != nil {
			fl.lib, fl.stats = rc.lib, f.countersFor(rc.lib)
		}
	}
	return fl.resp.enabled
}

func (fl *filter) captureAccept(x *filters.Exchange) {
	if v := x.Request.Header.Values("Accept-Encoding"); v != nil {
		fl.accept = append([]string(nil), v...)
	} else {
		fl.accept = nil
	}
}

// OnRequestHeaders notes the accept-encoding the response will be judged
// by and, with remove_accept_encoding_header, keeps it from the upstream
// so that the upstream answers uncompressed.
func (fl *filter) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	// Earlier filters may have changed the request or cleared the route.
	if !fl.setup(x) {
		fl.resp.enabled = false
		return filters.Continue
	}
	fl.captureAccept(x)
	if fl.resp.removeAccept {
		x.Request.Header.Del("Accept-Encoding")
	}
	return filters.Continue
}

// OnResponseHeaders is Envoy's encodeHeaders: decide, and when
// compressing, rewrite the head (content-encoding, no content-length,
// vary, etag).
func (fl *filter) OnResponseHeaders(x *filters.Exchange, endStream bool) filters.Status {
	if x.Response.Header == nil {
		x.Response.Header = http.Header{}
	}
	h := x.Response.Header
	d := fl.resp.decide(fl.lib.encoding, fl.accept, x.Response.Status, h, endStream)
	if d.why == skipDisabled {
		return filters.Continue
	}
	s := fl.stats
	switch d.why {
	case skipTooSmall:
		s.tooSmall.Inc()
	case skipEtag:
		s.notCompressedEtag.Inc()
	}
	if d.checkedAccept {
		s.accept(d.accept).Inc()
	}
	if d.vary {
		addVary(h)
	}
	if d.why != skipNone {
		s.notCompressed.Inc()
		return filters.Continue
	}
	s.compressed.Inc()
	h.Del("Content-Length")
	h.Set("Content-Encoding", fl.lib.encoding)
	if etag := h.Get("Etag"); etag != "" && !isWeak(etag) {
		// A compressed body is not byte-for-byte the entity the strong
		// validator names: Envoy drops it, or weakens it with
		// weaken_etag_on_compress.
		if fl.resp.weakenEtag {
			h.Set("Etag", "W/"+etag)
		} else {
			h.Del("Etag")
		}
	}
	fl.enc = fl.lib.get(&fl.out)
	return filters.Continue
}

// OnResponseBody compresses each chunk as it passes: the chunk is
// replaced by what the encoder produced for it, flushed so the client
// can decode it at once, and the end of the body closes the stream.
func (fl *filter) OnResponseBody(_ *filters.Exchange, body *filters.Buffer, endStream bool) filters.Status {
	if fl.enc == nil {
		return filters.Continue
	}
	in := body.Bytes()
	if len(in) == 0 && !endStream {
		return filters.Continue
	}
	// A fresh slice each chunk: the chain may hold a chunk past this call.
	fl.out.b = nil
	var err error
	if len(in) > 0 {
		_, err = fl.enc.Write(in)
	}
	if err == nil {
		if endStream {
			err = fl.enc.Close()
		} else {
			err = fl.enc.Flush()
		}
	}
	if err != nil {
		// The encoders write to memory and fail only on misuse; the head
		// is gone, so resetting the stream is all that is left.
		fl.release()
		return filters.Stop
	}
	fl.stats.totalUncompressed.Add(uint64(len(in)))
	fl.stats.totalCompressed.Add(uint64(len(fl.out.b)))
	body.Set(fl.out.b)
	if endStream {
		fl.release()
	}
	return filters.Continue
}

// OnDone returns an encoder left open by a stream that ended early.
func (fl *filter) OnDone(*filters.Exchange) { fl.release() }

func (fl *filter) release() {
	if fl.enc != nil {
		fl.lib.put(fl.enc)
		fl.enc = nil
	}
}

// sliceWriter collects encoder output.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func isWeak(etag string) bool {
	return len(etag) >= 2 && (etag[0] == 'W' || etag[0] == 'w') && etag[1] == '/'
}

// addVary adds accept-encoding to vary unless it, or "*", is there.
func addVary(h http.Header) {
	values := h.Values("Vary")
	if hasToken(values, "accept-encoding") || hasToken(values, "*") {
		return
	}
	if len(values) == 0 {
		h.Set("Vary", "Accept-Encoding")
		return
	}
	h.Set("Vary", strings.Join(values, ", ")+", Accept-Encoding")
}
