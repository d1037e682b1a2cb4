package bench

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
)

// startHAProxy runs HAProxy in master-worker mode (so SIGUSR2 reloads
// it), one thread per core, reusing idle server connections across
// client connections (http-reuse always). A clear-text bind accepts
// HTTP/1.1 and h2c prior knowledge alike. Many routes are a map looked
// up by path prefix, HAProxy's idiom for large route tables.
func startHAProxy(s Setup) (*Target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &Target{Name: "haproxy", Addr: fmt.Sprintf("127.0.0.1:%d", port), TLS: s.TLS != nil}
	bind := t.Addr
	if s.TLS != nil {
		bind += " ssl crt " + s.TLS.Combined
	}
	t.H2Addr = t.Addr
	routing := "    default_backend be\n"
	if s.Routes > 0 {
		var m strings.Builder
		for i := range s.Routes {
			fmt.Fprintf(&m, "/r%d/ be\n", i)
		}
		mapPath := filepath.Join(s.Dir, "routes.map")
		if err := writeFile(mapPath, m.String()); err != nil {
			return nil, err
		}
		routing = fmt.Sprintf("    use_backend %%[path,map_beg(%s,be)]\n", mapPath)
	}
	// maxconn is what the open-file limit allows. HAProxy reserves two
	// descriptors per connection and refuses to start beyond the limit
	// unless ulimit-n is given; idle client connections need one each.
	fds := fileLimit()
	conf := fmt.Sprintf(`global
    ulimit-n %d
    maxconn %d
    nbthread 2
    log stderr format raw local0 err

defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    maxconn %d

frontend fe
    bind %s
%s
backend be
    http-reuse always
    server s1 %s
`, fds, fds/2-64, fds/2-64, bind, routing, s.Backend)
	path := filepath.Join(s.Dir, "haproxy.cfg")
	if err := writeFile(path, conf); err != nil {
		return nil, err
	}
	t.proc, err = startProcess("haproxy", nil, "haproxy", "-W", "-db", "-f", path)
	if err != nil {
		return nil, err
	}
	if err := t.proc.waitListening(t.Addr); err != nil {
		t.proc.stop()
		return nil, err
	}
	t.Reload = func(int) error { return syscall.Kill(t.proc.pid(), syscall.SIGUSR2) }
	return t, nil
}
