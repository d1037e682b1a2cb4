package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/waygate/waygate/filters"
	routes "github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// upgrade proxies an HTTP/1.1 upgrade (WebSocket): the request goes
// upstream, and on 101 both connections are spliced. Any other answer is
// an ordinary response.
func (f *filter) upgrade(ctx context.Context, x *filters.Exchange, rt *routes.Route, cl *upstream.Cluster, pc upstream.PickContext) {
	ep, err := cl.Pick(pc)
	if err != nil {
		f.local(x, rt, filters.LocalReply{Status: http.StatusServiceUnavailable, Body: bodyNoHealthy, Details: "no_healthy_upstream", Flag: "UH"})
		return
	}
	x.Info.UpstreamHost, x.Info.UpstreamHostMetadata = ep.Address, ep.Metadata
	// The upgraded connection outlives the route timeout.
	req := newUpstreamRequest(context.WithoutCancel(ctx), x, ep.Address, true)
	resp, err := cl.Transport().RoundTrip(req)
	if err != nil {
		if isConnectFailure(err) {
			f.local(x, rt, filters.LocalReply{Status: http.StatusServiceUnavailable, Body: bodyConnectFailed, Details: "upstream_reset_before_response_started{connection_failure}", Flag: "UF"})
		} else {
			f.local(x, rt, filters.LocalReply{Status: http.StatusServiceUnavailable, Body: bodyReset, Details: "upstream_reset_before_response_started{connection_termination}", Flag: "UC"})
		}
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		f.respond(x, rt, nil, resp)
		return
	}
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		panic(http.ErrAbortHandler)
	}
	defer up.Close()
	down, brw, err := x.Encoder.Hijack()
	if err != nil {
		// HTTP/2 downstreams cannot be hijacked.
		f.local(x, rt, filters.LocalReply{Status: http.StatusNotImplemented, Body: "upgrade not supported on this connection", Details: "upgrade_failed"})
		return
	}
	defer down.Close()
	x.Response.Status = resp.StatusCode
	x.Info.ResponseCodeDetails = "via_upstream"
	for k, v := range resp.Header {
		x.Response.Header[k] = v
	}
	rt.ApplyResponseHeaders(x, nil)
	if err := writeHead(brw.Writer, resp.StatusCode, x.Response.Header); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		// Bytes the server already buffered from the client go first.
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			if _, err := up.Write(b); err != nil {
				done <- struct{}{}
				return
			}
		}
		_, _ = io.Copy(up, down)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(down, up)
		done <- struct{}{}
	}()
	<-done
}

func writeHead(w *bufio.Writer, status int, h http.Header) error {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	w.WriteString("\r\n")
	return w.Flush()
}
