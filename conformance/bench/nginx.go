package bench

import (
	"fmt"
	"strings"
	"syscall"
)

// startNginx runs nginx as a reverse proxy to the backend, configured as
// a tuned production reverse proxy would be: upstream keep-alive
// connections (HTTP/1.1, Connection cleared) and proxy buffers large
// enough for a 64 KiB body, so no response is spooled to a temp file.
// h2c needs a port of its own in nginx 1.22.
func startNginx(s Setup) (*Target, error) {
	p1, err := freePort()
	if err != nil {
		return nil, err
	}
	p2, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &Target{Name: "nginx", Addr: fmt.Sprintf("127.0.0.1:%d", p1), H2Addr: fmt.Sprintf("127.0.0.1:%d", p2), TLS: s.TLS != nil}
	listen := fmt.Sprintf("        listen %s backlog=4096;\n", t.Addr)
	if s.TLS != nil {
		listen = nginxTLS(t.Addr, s.TLS)
	}
	var routes strings.Builder
	for i := range s.Routes {
		fmt.Fprintf(&routes, "        location /r%d/ { proxy_pass http://backend; }\n", i)
	}
	conf := nginxMain(s.Dir) + fmt.Sprintf(`
    upstream backend {
        server %s;
        keepalive 256;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
%s        listen %s http2 backlog=4096;
        http2_max_concurrent_streams 128;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffer_size 16k;
        proxy_buffers 8 16k;
%s        location / { proxy_pass http://backend; }
    }
}
`, s.Backend, listen, t.H2Addr, routes.String())
	path, err := writeNginxConf(s.Dir, conf)
	if err != nil {
		return nil, err
	}
	t.proc, err = startProcess("nginx", nil, "nginx", "-p", s.Dir, "-e", "stderr", "-c", path)
	if err != nil {
		return nil, err
	}
	if err := t.proc.waitListening(t.Addr); err != nil {
		t.proc.stop()
		return nil, err
	}
	// SIGHUP re-reads the config: new workers start, old ones finish
	// their requests and close their keep-alive connections.
	t.Reload = func(int) error { return syscall.Kill(t.proc.pid(), syscall.SIGHUP) }
	return t, nil
}
