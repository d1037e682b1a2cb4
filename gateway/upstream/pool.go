package upstream

import (
	"net"
	"net/http"
	"time"
)

// pool holds a cluster's keep-alive connections: one transport per
// upstream protocol. Transports come from net/http, whose HTTP/1.1 and
// HTTP/2 clients are proven; the pool is the seam where per-endpoint
// limits (max connections, max requests per connection) plug in.
type pool struct {
	settings poolSettings
	h1       *http.Transport
	h2       *http.Transport
}

func newPool(s poolSettings) *pool {
	dialer := &net.Dialer{Timeout: s.connectTimeout, KeepAlive: 30 * time.Second}
	base := func() *http.Transport {
		return &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConns:        0, // no global cap: Envoy pools per host
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     s.idleTimeout,
			DisableCompression:  true, // a proxy passes encodings through
			// Route timeouts govern the wait for headers.
			ResponseHeaderTimeout: 0,
			ExpectContinueTimeout: 0,
		}
	}
	h1 := base()
	h1.Protocols = new(http.Protocols)
	h1.Protocols.SetHTTP1(true)
	if s.maxRequests == 1 {
		h1.DisableKeepAlives = true
	}
	h2 := base()
	h2.Protocols = new(http.Protocols)
	h2.Protocols.SetUnencryptedHTTP2(true)
	return &pool{settings: s, h1: h1, h2: h2}
}

func (p *pool) closeIdle() {
	p.h1.CloseIdleConnections()
	p.h2.CloseIdleConnections()
}
