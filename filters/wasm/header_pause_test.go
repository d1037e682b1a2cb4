package wasm

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestHeaderPauseWithBody pauses headers that a body of a declared
// length follows. As after Envoy's StopIteration, the body callbacks
// still run, the chain buffering the body, and a Continue at the end of
// the body lets the headers go on, changed, with it. A stream that made
// an http call in the paused callback, or whose body may be a stream
// (no length), waits for the plugin instead, and the call's answer
// continues or answers it.
func TestHeaderPauseWithBody(t *testing.T) {
	backend := startEcho(t, "backend")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		hcmtest.StaticCluster("backend", backend.Addr()), hcmtest.StaticCluster("body", startBodyEcho(t)))
	body := strings.Repeat("p", 100<<10)

	t.Run("request", func(t *testing.T) {
		e := do(t, "POST", g.url+"/", body, "x-abi", "pause-headers").echo(t)
		if e.Headers["x-body-size"] != strconv.Itoa(len(body)) || e.BodyBytes != int64(len(body)) {
			t.Errorf("upstream got x-body-size %q and %d bytes, want %d", e.Headers["x-body-size"], e.BodyBytes, len(body))
		}
	})
	t.Run("response", func(t *testing.T) {
		r := do(t, "POST", g.url+"/", body, "host", "body", "x-abi", "pause-response")
		if r.status != 200 || r.body != body || r.header.Get("X-Resp-Body-Size") != strconv.Itoa(len(body)) {
			t.Errorf("got %d, %d bytes, x-resp-body-size %q", r.status, len(r.body), r.header.Get("X-Resp-Body-Size"))
		}
	})
	// ABI 0.1.0's proxy_continue_request resumes as well.
	for _, c := range []string{"callout-request", "callout-request-v010"} {
		t.Run("call decides/"+c, func(t *testing.T) {
			before := backend.Requests()
			e := do(t, "POST", g.url+"/", body, "x-abi", c).echo(t)
			if e.Headers["x-call-status"] != "200" || e.BodyBytes != int64(len(body)) {
				t.Errorf("upstream got x-call-status %q and %d bytes: the request did not wait for the call", e.Headers["x-call-status"], e.BodyBytes)
			}
			if n := backend.Requests() - before; n != 2 {
				t.Errorf("backend saw %d requests, want the call and the request", n)
			}
		})
	}
	t.Run("call decides, body streamed", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() { io.WriteString(pw, body); pw.Close() }()
		req, _ := http.NewRequest("POST", g.url+"/", pr)
		req.Header.Set("x-abi", "callout-request")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := result{status: resp.StatusCode, header: resp.Header, body: string(b)}
		if e := r.echo(t); e.Headers["x-call-status"] != "200" || e.BodyBytes != int64(len(body)) {
			t.Errorf("upstream got x-call-status %q and %d bytes", e.Headers["x-call-status"], e.BodyBytes)
		}
	})
	t.Run("call denies", func(t *testing.T) {
		before := backend.Requests()
		r := do(t, "POST", g.url+"/", body, "x-abi", "callout-deny")
		if r.status != 403 || r.body != "denied" {
			t.Errorf("got %d %q, want 403 denied", r.status, r.body)
		}
		if n := backend.Requests() - before; n != 1 {
			t.Errorf("backend saw %d requests, want the call only", n)
		}
	})
}

// TestHeldStreamInstanceCrash crashes the instance of a stream whose
// headers are held while its body arrives: the stream gets the fail
// strategy (503) when its next body chunk comes, rather than hanging.
func TestHeldStreamInstanceCrash(t *testing.T) {
	t.Setenv(EnvPoolSize, "1")
	backend := startEcho(t, "backend")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		hcmtest.StaticCluster("backend", backend.Addr()))
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", g.url+"/", pr)
	req.ContentLength = int64(len("first part") + len("second part"))
	req.Header.Set("x-abi", "pause-headers")
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	io.WriteString(pw, "first part")
	time.Sleep(50 * time.Millisecond)
	if r := do(t, "GET", g.url+"/", "", "x-abi", "trap"); r.status != 503 {
		t.Errorf("the trapping request got %d, want 503", r.status)
	}
	io.WriteString(pw, "second part")
	pw.Close()
	select {
	case resp := <-done:
		if resp != nil {
			if resp.StatusCode != 503 {
				t.Errorf("the held stream got %d, want 503", resp.StatusCode)
			}
			resp.Body.Close()
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held stream hangs")
	}
	if r := do(t, "GET", g.url+"/", ""); r.status != 200 {
		t.Errorf("after the crash: %d", r.status)
	}
}
