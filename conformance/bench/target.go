package bench

import (
	"fmt"
	"os"
	"path/filepath"
)

// Setup is what a scenario asks of every proxy: where the backend is and
// how the route table looks. Each proxy gets its own directory.
type Setup struct {
	Dir     string
	Backend string // host:port of the backend (HTTP/1.1)
	// Routes adds that many prefix routes /r0/ ... /rN-1/ before the
	// catch-all route, all to the backend (the 10,000 routes scenario).
	Routes int
	// Filters puts Waygate's built-in filter chain in front of the
	// route: JWT (ES256), authorization rules, a local rate limit and a
	// fault at 0%. Only Waygate implements it; the other proxies serve
	// plain routes as baselines.
	Filters *FilterSetup
	// TLS, when set, makes Addr a TLS listener with this certificate.
	TLS *TLSFiles
}

// Target is one place load is driven at: the backend reached directly,
// or a proxy in front of it.
type Target struct {
	Name string
	// Addr takes HTTP/1.1 (and h2c prior knowledge where H2Addr is the
	// same); H2Addr takes h2c prior knowledge.
	Addr, H2Addr string
	// TLS says Addr speaks HTTPS.
	TLS bool
	// Headers are added to every request (the JWT of the filter chain).
	Headers map[string]string
	// Admin is Waygate's admin address, for profiles.
	Admin string
	// Reload pushes a configuration change while serving.
	Reload func(n int) error
	// Applied, when set, says whether the change of Reload(n) serves
	// requests yet.
	Applied func(n int) bool
	proc    *process
	stop    []func()
}

func (t *Target) url(path string) string {
	if t.TLS {
		return "https://" + t.Addr + path
	}
	return "http://" + t.Addr + path
}

// PIDs is the serving process tree; none for the direct baseline, whose
// backend is shared by every target.
func (t *Target) PIDs() []int {
	if t.proc == nil {
		return nil
	}
	return t.proc.pids()
}

// Close stops the target's processes.
func (t *Target) Close() {
	if t.proc != nil {
		t.proc.stop()
	}
	for _, f := range t.stop {
		f()
	}
}

// Proxy starts one kind of proxy for a setup.
type Proxy struct {
	Name  string
	Start func(s Setup) (*Target, error)
}

// Proxies are the proxies compared, in the order of a round.
func Proxies(waygateBin string) []Proxy {
	return []Proxy{
		{Name: "waygate", Start: func(s Setup) (*Target, error) { return startWaygate(waygateBin, s) }},
		{Name: "nginx", Start: startNginx},
		{Name: "haproxy", Start: startHAProxy},
		{Name: "caddy", Start: startCaddy},
	}
}

// writeFile writes a config file, creating its directory.
func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
