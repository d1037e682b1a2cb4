package main

import (
	"hash/fnv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// routing behaves as the SDK's http_routing example: on an even dice
// the request goes to the -canary authority.
type routing struct {
	types.DefaultHttpContext
	dice uint32
}

func (c *routing) OnHttpRequestHeaders(int, bool) types.Action {
	if c.dice%2 == 0 {
		authority, err := proxywasm.GetHttpRequestHeader(":authority")
		if err != nil {
			proxywasm.LogCritical("failed to get request header: ':authority'")
			return types.ActionPause
		}
		if err := proxywasm.ReplaceHttpRequestHeader(":authority", authority+"-canary"); err != nil {
			return types.ActionPause
		}
	}
	return types.ActionContinue
}

// authRandom behaves as the SDK's http_auth_random example: it calls a
// cluster with the request's headers and lets the request on when the
// answer's body hashes to an even number, else answers 403.
type authRandom struct {
	types.DefaultHttpContext
	cluster string
}

func (c *authRandom) OnHttpRequestHeaders(int, bool) types.Action {
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get request headers: %v", err)
		return types.ActionContinue
	}
	if _, err := proxywasm.DispatchHttpCall(c.cluster, hs, nil, nil, 5000, authResponse); err != nil {
		proxywasm.LogCriticalf("dispatch httpcall failed: %v", err)
		return types.ActionContinue
	}
	return types.ActionPause
}

func authResponse(_, bodySize, _ int) {
	b, err := proxywasm.GetHttpCallResponseBody(0, bodySize)
	if err != nil {
		proxywasm.LogCriticalf("failed to get response body: %v", err)
		_ = proxywasm.SendHttpResponse(503, nil, []byte("auth service failed"), -1)
		return
	}
	h := fnv.New32a()
	h.Write(b)
	if h.Sum32()%2 == 0 {
		_ = proxywasm.AddHttpRequestHeader("x-auth", "granted")
		_ = proxywasm.ResumeHttpRequest()
		return
	}
	if err := proxywasm.SendHttpResponse(403, [][2]string{{"powered-by", "proxy-wasm-go-sdk!!"}}, []byte("access forbidden"), -1); err != nil {
		_ = proxywasm.ResumeHttpRequest()
	}
}

// OnTick, in tick mode, calls the cluster as dispatch_call_on_tick
// does; in hello mode it counts ticks as helloworld logs them; in
// postpone mode it resumes the requests held since the last tick, as
// postpone_requests does.
func (p *plugin) OnTick() {
	p.ticks.Increment(1)
	switch p.cfg.Mode {
	case "tick":
		hs := [][2]string{{":method", "GET"}, {":authority", "some_authority"}, {":path", "/ok"}, {"accept", "*/*"}}
		if _, err := proxywasm.DispatchHttpCall(p.cfg.Cluster, hs, nil, nil, 5000, func(n, _, _ int) {
			if n > 0 {
				p.calls.Increment(1)
			}
		}); err != nil {
			proxywasm.LogCriticalf("dispatch httpcall failed: %v", err)
		}
	case "hello":
		proxywasm.LogInfo("OnTick called")
	case "postpone":
		for _, id := range p.postponed {
			_ = proxywasm.SetEffectiveContext(id)
			_ = proxywasm.ResumeHttpRequest()
		}
		p.postponed = p.postponed[:0]
	}
}

type postpone struct {
	types.DefaultHttpContext
	id     uint32
	plugin *plugin
}

func (c *postpone) OnHttpRequestHeaders(int, bool) types.Action {
	c.plugin.postponed = append(c.plugin.postponed, c.id)
	return types.ActionPause
}
