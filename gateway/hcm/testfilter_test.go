package hcm_test

import (
	"bytes"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// tagTypeURL is the config type of the test filter: a StringValue whose
// value lists what the filter does, such as "name=a,reply=401".
const tagTypeURL = "type.googleapis.com/google.protobuf.StringValue"

func init() {
	filters.Register(tagTypeURL, buildTag)
	filters.RegisterRouteConfig(tagTypeURL, func(m proto.Message) (any, error) {
		return m.(*wrapperspb.StringValue).GetValue(), nil
	})
}

// tagSpec is a compiled test filter config.
type tagSpec struct {
	name        string
	reply       int    // answer locally with this status
	panics      bool   // panic in the request headers phase
	panicsResp  bool   // panic in the response headers phase
	panicsBody  bool   // panic in the request body phase
	bufferHdr   bool   // StopAndBuffer from the request headers phase
	bufferReq   bool   // buffer the request body until its end
	rewriteReq  string // replace the whole request body ("" keeps it)
	rewriteResp string // replace the whole response body ("" keeps it)
	seeBody     bool   // put the request body it saw in x-body-seen
	watch       bool   // count callbacks that overlap in overlaps
	details     bool   // put the response code details in x-details
	holdHdr     bool   // StopAndBuffer from the response headers phase
	trailers    bool   // add its name to the x-trl-order response trailer
	reqTrailers bool   // add x-trl-seen-NAME to the request trailers
}

func buildTag(m proto.Message, _ filters.Env) (filters.Factory, error) {
	var s tagSpec
	for _, kv := range strings.Split(m.(*wrapperspb.StringValue).GetValue(), ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "name":
			s.name = v
		case "reply":
			s.reply, _ = strconv.Atoi(v)
		case "panic":
			s.panics = true
		case "panic-resp":
			s.panicsResp = true
		case "panic-body":
			s.panicsBody = true
		case "buffer-hdr":
			s.bufferHdr = true
		case "buffer-req":
			s.bufferReq = true
		case "rewrite-req":
			s.rewriteReq, s.bufferReq = v, true
		case "rewrite-resp":
			s.rewriteResp = v
		case "see-body":
			s.seeBody = true
		case "watch":
			s.watch = true
		case "details":
			s.details = true
		case "hold-hdr":
			s.holdHdr = true
		case "trailers":
			s.trailers = true
		case "req-trailers":
			s.reqTrailers = true
		}
	}
	return filters.FactoryFunc(func(*filters.Exchange) any {
		t := &tagFilter{spec: &s}
		if s.reqTrailers {
			return &reqTrailersTagFilter{t}
		}
		if s.bufferReq || s.rewriteResp != "" || s.seeBody || s.watch || s.panicsBody {
			return &bodyTagFilter{t}
		}
		return t
	}), nil
}

// tagFilter records the order of the phases it sees in the x-order
// request header and the x-resp-order response header.
type tagFilter struct {
	spec  *tagSpec
	busy  atomic.Bool
	calls int
}

func (f *tagFilter) OnRequestHeaders(x *filters.Exchange, endStream bool) filters.Status {
	x.Request.Header.Add("X-Order", f.spec.name)
	if v, ok := x.Route.PerFilterConfig(f.spec.name).(string); ok {
		x.Request.Header.Set("X-Route-Config-"+f.spec.name, v)
	}
	if f.spec.panics {
		panic("test filter " + f.spec.name)
	}
	if f.spec.reply != 0 {
		x.SendLocalReply(filters.LocalReply{Status: f.spec.reply, Body: "denied by " + f.spec.name})
		return filters.Stop
	}
	if f.spec.bufferHdr {
		return filters.StopAndBuffer
	}
	return filters.Continue
}

func (f *tagFilter) OnResponseHeaders(x *filters.Exchange, endStream bool) filters.Status {
	x.Response.Header.Add("X-Resp-Order", f.spec.name)
	if f.spec.details {
		x.Response.Header.Set("X-Details", x.Info.ResponseCodeDetails)
	}
	if f.spec.panicsResp {
		panic("test filter " + f.spec.name + " on the response")
	}
	if (f.spec.rewriteResp != "" || f.spec.holdHdr) && !endStream {
		return filters.StopAndBuffer
	}
	return filters.Continue
}

func (f *tagFilter) OnResponseTrailers(x *filters.Exchange) filters.Status {
	if f.spec.trailers {
		x.Response.Trailer.Add("X-Trl-Order", f.spec.name)
	}
	return filters.Continue
}

// reqTrailersTagFilter is a tagFilter that also sees request trailers:
// it records the x-req-checksum trailer it saw in an x-trl-seen-NAME
// trailer of its own.
type reqTrailersTagFilter struct{ *tagFilter }

func (f *reqTrailersTagFilter) OnRequestTrailers(x *filters.Exchange) filters.Status {
	x.Request.Trailer.Set("X-Trl-Seen-"+f.spec.name, x.Request.Trailer.Get("X-Req-Checksum"))
	return filters.Continue
}

// bodyTagFilter is a tagFilter that also sees bodies.
type bodyTagFilter struct{ *tagFilter }

// overlaps counts callbacks of watching filters that began while another
// callback of the same stream's filter was running.
var overlaps atomic.Int64

// enter and leave bracket a callback of a watching filter. calls is
// plain on purpose: the race detector sees callbacks that are not
// serialized.
func (f *tagFilter) enter() {
	if !f.spec.watch {
		return
	}
	if !f.busy.CompareAndSwap(false, true) {
		overlaps.Add(1)
	}
	f.calls++
	runtime.Gosched()
}

func (f *tagFilter) leave() {
	if f.spec.watch {
		f.busy.Store(false)
	}
}

func (f *bodyTagFilter) OnRequestBody(x *filters.Exchange, b *filters.Buffer, endStream bool) filters.Status {
	f.enter()
	defer f.leave()
	if f.spec.panicsBody {
		panic("test filter " + f.spec.name + " on the request body")
	}
	if f.spec.bufferReq && !endStream {
		return filters.StopAndBuffer
	}
	if f.spec.seeBody && endStream {
		x.Request.Header.Set("X-Body-Seen", string(b.Bytes()))
	}
	if f.spec.rewriteReq != "" && endStream {
		b.Set([]byte(f.spec.rewriteReq))
	}
	return filters.Continue
}

func (f *bodyTagFilter) OnResponseBody(x *filters.Exchange, b *filters.Buffer, endStream bool) filters.Status {
	f.enter()
	defer f.leave()
	if f.spec.rewriteResp == "" {
		return filters.Continue
	}
	if !endStream {
		return filters.StopAndBuffer
	}
	b.Set(bytes.ToUpper(append([]byte(f.spec.rewriteResp+":"), b.Bytes()...)))
	return filters.Continue
}

// tag is an HttpFilter running the test filter with spec.
func tag(t testing.TB, name, spec string) *hcmv3.HttpFilter {
	return hcmtest.Filter(t, name, wrapperspb.String("name="+name+","+spec))
}

var _ = http.StatusOK
