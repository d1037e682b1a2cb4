// Command network is a Proxy-Wasm TCP (network filter) plugin for the
// host's tests, written with the upstream Go SDK's TcpContext. Its plugin
// configuration is a list of words turning on what it does:
//
//	upper  upper-cases the data from the downstream
//	rot13  rotates the letters of the data from the upstream by 13
//	line   holds downstream data until it holds a newline
//	gate   holds each new connection until its next tick
//	auth=P holds each new connection until a GET of path P on cluster
//	       "auth" answers: 200 lets it go on, anything else closes it
//
// and, whatever the configuration, on downstream data holding
//
//	QUIT   it closes the connection
//	CRASH  it panics, which kills its instance
//	HOLD   it pauses, and continues the connection on its next tick
//	WHO    it replaces the data with the connection's properties
//
// It counts the bytes of each side in the counters tcp_downstream_bytes
// and tcp_upstream_bytes, and logs the connection's properties.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

// plugin is the root context.
type plugin struct {
	types.DefaultPluginContext
	upper, rot13, line bool
	gate               bool
	authPath           string
	down, up           proxywasm.MetricCounter
	held               []uint32 // connections paused on HOLD
	conns              map[uint32]*conn
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("reading the configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	for _, w := range strings.Fields(string(cfg)) {
		switch w {
		case "upper":
			p.upper = true
		case "rot13":
			p.rot13 = true
		case "line":
			p.line = true
		case "gate":
			p.gate = true
		default:
			if path, ok := strings.CutPrefix(w, "auth="); ok {
				p.authPath = path
				continue
			}
			proxywasm.LogErrorf("unknown word %q in the configuration", w)
			return types.OnPluginStartStatusFailed
		}
	}
	p.down = proxywasm.DefineCounterMetric("tcp_downstream_bytes")
	p.up = proxywasm.DefineCounterMetric("tcp_upstream_bytes")
	return types.OnPluginStartStatusOK
}

// OnTick continues the connections held on HOLD.
func (p *plugin) OnTick() {
	for _, id := range p.held {
		if c, ok := p.conns[id]; ok {
			c.holding = false
		}
		if err := proxywasm.SetEffectiveContext(id); err != nil {
			proxywasm.LogErrorf("set effective context %d: %v", id, err)
			continue
		}
		if err := proxywasm.ContinueTcpStream(); err != nil {
			proxywasm.LogErrorf("continue %d: %v", id, err)
		}
	}
	p.held = p.held[:0]
	_ = proxywasm.SetTickPeriodMilliSeconds(0)
}

func (p *plugin) NewTcpContext(id uint32) types.TcpContext {
	c := &conn{p: p, id: id}
	if p.conns == nil {
		p.conns = map[uint32]*conn{}
	}
	p.conns[id] = c
	return c
}

// conn is one connection's context.
type conn struct {
	types.DefaultTcpContext
	p            *plugin
	id           uint32
	down, up     uint64
	loggedUpAddr bool
	holding      bool // paused on HOLD until the next tick
}

func (c *conn) OnNewConnection() types.Action {
	proxywasm.LogInfof("new connection %d from %s to %s", c.id, property("source", "address"), property("destination", "address"))
	if c.p.authPath != "" {
		return c.authorize()
	}
	if c.p.gate {
		c.p.held = append(c.p.held, c.id)
		must(proxywasm.SetTickPeriodMilliSeconds(20))
		return types.ActionPause
	}
	return types.ActionContinue
}

// authorize asks the auth cluster whether the connection may go on,
// and holds it until the answer.
func (c *conn) authorize() types.Action {
	hs := [][2]string{{":method", "GET"}, {":path", c.p.authPath}, {":authority", "auth"}}
	_, err := proxywasm.DispatchHttpCall("auth", hs, nil, nil, 5000, func(int, int, int) {
		status := "none"
		if hs, err := proxywasm.GetHttpCallResponseHeaders(); err == nil {
			for _, h := range hs {
				if h[0] == ":status" {
					status = h[1]
				}
			}
		}
		if status == "200" {
			must(proxywasm.ContinueTcpStream())
			return
		}
		proxywasm.LogInfof("connection %d refused: auth answered %s", c.id, status)
		must(proxywasm.CloseDownstream())
	})
	if err != nil {
		proxywasm.LogErrorf("auth call: %v", err)
		must(proxywasm.CloseDownstream())
	}
	return types.ActionPause
}

func (c *conn) OnDownstreamData(size int, end bool) types.Action {
	if size == 0 {
		return types.ActionContinue
	}
	data, err := proxywasm.GetDownstreamData(0, size)
	if err != nil {
		proxywasm.LogErrorf("reading downstream data: %v", err)
		return types.ActionContinue
	}
	switch {
	case bytes.Contains(data, []byte("CRASH")):
		panic("CRASH requested")
	case bytes.Contains(data, []byte("QUIT")):
		if err := proxywasm.CloseDownstream(); err != nil {
			proxywasm.LogErrorf("close: %v", err)
		}
		return types.ActionPause
	case bytes.Contains(data, []byte("WHO")):
		who := fmt.Sprintf("src=%s dst=%s up=%s cluster=%s id=%d\n",
			property("source", "address"), property("destination", "address"),
			property("upstream", "address"), property("cluster_name"), intProperty("connection", "id"))
		must(proxywasm.ReplaceDownstreamData([]byte(who)))
		return types.ActionContinue
	case bytes.Contains(data, []byte("HOLD")):
		// The tick lets the data go on as it is, without calling here
		// again; data arriving meanwhile is held with it.
		if !c.holding {
			c.holding = true
			c.p.held = append(c.p.held, c.id)
			must(proxywasm.SetTickPeriodMilliSeconds(20))
		}
		return types.ActionPause
	}
	if c.p.line && !end && !bytes.Contains(data, []byte("\n")) {
		return types.ActionPause
	}
	c.down += uint64(len(data))
	c.p.down.Increment(uint64(len(data)))
	if c.p.upper {
		must(proxywasm.ReplaceDownstreamData(bytes.ToUpper(data)))
	}
	return types.ActionContinue
}

func (c *conn) OnUpstreamData(size int, end bool) types.Action {
	if !c.loggedUpAddr {
		c.loggedUpAddr = true
		proxywasm.LogInfof("connection %d upstream %s in cluster %s", c.id, property("upstream", "address"), property("cluster_name"))
	}
	if size == 0 {
		return types.ActionContinue
	}
	data, err := proxywasm.GetUpstreamData(0, size)
	if err != nil {
		proxywasm.LogErrorf("reading upstream data: %v", err)
		return types.ActionContinue
	}
	c.up += uint64(len(data))
	c.p.up.Increment(uint64(len(data)))
	if c.p.rot13 {
		must(proxywasm.ReplaceUpstreamData(rot13(data)))
	}
	return types.ActionContinue
}

func (c *conn) OnDownstreamClose(peer types.PeerType) {
	proxywasm.LogInfof("connection %d downstream closed by %s", c.id, peerName(peer))
}

func (c *conn) OnUpstreamClose(peer types.PeerType) {
	proxywasm.LogInfof("connection %d upstream closed by %s", c.id, peerName(peer))
}

func (c *conn) OnStreamDone() {
	delete(c.p.conns, c.id)
	proxywasm.LogInfof("connection %d done: %d bytes down, %d bytes up", c.id, c.down, c.up)
}

func peerName(p types.PeerType) string {
	switch p {
	case types.PeerTypeLocal:
		return "local"
	case types.PeerTypeRemote:
		return "remote"
	}
	return "unknown"
}

func property(path ...string) string {
	b, err := proxywasm.GetProperty(path)
	if err != nil {
		return "?"
	}
	return string(b)
}

func intProperty(path ...string) uint64 {
	b, err := proxywasm.GetProperty(path)
	if err != nil || len(b) != 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func rot13(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			c = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			c = 'A' + (c-'A'+13)%26
		}
		out[i] = c
	}
	return out
}

func must(err error) {
	if err != nil {
		proxywasm.LogErrorf("hostcall: %v", err)
	}
}
