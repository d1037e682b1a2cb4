package bench

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Scenario is one comparison: the same setup for every proxy and the
// same load on every target.
type Scenario struct {
	Name, Title string
	Load        Load
	// Path is what the warm-up requests.
	Path string
	// Routes and Filters shape the setup (see Setup).
	Routes  int
	Filters bool
	// Push changes the configuration of every proxy once a second (or
	// every PushEvery) while the load runs.
	Push      bool
	PushEvery time.Duration
	// Idle scenarios report memory per connection instead of speed.
	Idle bool
	// TLS serves HTTPS on every target.
	TLS bool
}

// Settings are the knobs the command line exposes.
type Settings struct {
	Duration  time.Duration
	Conns     int
	Rate      int
	IdleConns int
}

// Scenarios are every scenario the harness knows, in the order "all"
// runs them.
func Scenarios(s Settings) []Scenario {
	h1 := func(path string) Wrk { return Wrk{Threads: 1, Conns: s.Conns, Duration: s.Duration, Path: path} }
	return []Scenario{
		{Name: "h1-1k", Title: fmt.Sprintf("HTTP/1.1 keep-alive, %d connections, 1 KiB body", s.Conns), Load: h1("/1k"), Path: "/1k"},
		{Name: "h1-64k", Title: fmt.Sprintf("HTTP/1.1 keep-alive, %d connections, 64 KiB body", s.Conns), Load: h1("/64k"), Path: "/64k"},
		{Name: "h2-100", Title: "HTTP/2 (h2c), 1 connection, 100 concurrent streams, 1 KiB body",
			Load: H2load{Conns: 1, Streams: 100, Duration: s.Duration, Path: "/1k"}, Path: "/1k"},
		{Name: "fixed-1k", Title: fmt.Sprintf("fixed %d req/s, 1 KiB body, latency from each request's due time", s.Rate),
			Load: FixedRate{Rate: s.Rate, Duration: s.Duration, Conns: 64, Path: "/1k"}, Path: "/1k"},
		// wrk keeps each connection's TLS session and resumes it on the
		// next connection (checked against nginx's $ssl_session_reused):
		// after the first, handshakes are abbreviated ones, as a
		// returning browser's would be.
		{Name: "tls-new-conn", Title: fmt.Sprintf("HTTPS, a new TCP connection and resumed TLS session per request (Connection: close), %d clients, ECDSA P-256", s.Conns),
			Load: Wrk{Threads: 1, Conns: s.Conns, Duration: s.Duration, Path: "/1k", Close: true}, Path: "/1k", TLS: true},
		{Name: "filters", Title: "full filter chain (JWT ES256, 10-rule authorization, local rate limit, fault 0%, a Wasm plugin adding a header), 1 KiB body",
			Load: h1("/1k"), Path: "/1k", Filters: true},
		{Name: "routes-10k", Title: "10,000 prefix routes, request matching the last one, 1 KiB body",
			Load: h1("/r9999/x"), Path: "/r9999/x", Routes: 10000},
		{Name: "idle-10k", Title: fmt.Sprintf("%d idle keep-alive connections: memory per connection", s.IdleConns),
			// Settle: Waygate gives back the buffers and goroutine of a
			// connection idle for a second (gateway/http1's idle.go),
			// and the freed memory to the system once they all did; the
			// figure is that of connections that stay idle.
			Load: Idle{Conns: s.IdleConns, Settle: 5 * time.Second, Path: "/1k"}, Idle: true},
		{Name: "push", Title: "configuration pushed every second under HTTP/1.1 load, 1 KiB body",
			Load: h1("/1k"), Path: "/1k", Push: true},
		// Each push rewrites the whole VirtualService of 10,001 routes
		// (the default route's header changes), so the gateway
		// translates and applies all of them; every 3s, as one takes
		// longer than a second.
		{Name: "push-10k", Title: "10,000 prefix routes pushed every 3s under HTTP/1.1 load on the last one, 1 KiB body",
			Load: h1("/r9999/x"), Path: "/r9999/x", Routes: 10000, Push: true, PushEvery: 3 * time.Second},
	}
}

// mainScenarios are the ones the committed results cover.
var mainScenarios = []string{"h1-1k", "h1-64k", "fixed-1k", "push", "idle-10k"}

// SelectScenarios resolves a comma-separated list of names, "main" or
// "all".
func SelectScenarios(all []Scenario, spec string) ([]Scenario, error) {
	byName := map[string]Scenario{}
	var names []string
	for _, s := range all {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	var want []string
	for _, n := range strings.Split(spec, ",") {
		switch n = strings.TrimSpace(n); n {
		case "all":
			want = append(want, names...)
		case "main":
			want = append(want, mainScenarios...)
		default:
			want = append(want, n)
		}
	}
	var out []Scenario
	for _, n := range want {
		s, ok := byName[n]
		if !ok {
			sort.Strings(names)
			return nil, fmt.Errorf("unknown scenario %q; known: %s, main, all", n, strings.Join(names, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}
