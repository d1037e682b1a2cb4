package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Backend is the one origin every target reaches: nginx serving static
// files from memory (open_file_cache, sendfile), the fastest origin this
// machine has, so a proxy's cost is not hidden behind its backend's.
// Every path answers: /64k with 65,536 bytes, anything else with the
// 1,024 bytes of /1k, so routes such as /r42/x reach a body too.
type Backend struct {
	Addr   string // HTTP/1.1
	H2Addr string // h2c prior knowledge, for the direct HTTP/2 baseline
	// TLSAddr is HTTPS, for the direct TLS baseline; empty without
	// certificate files.
	TLSAddr string
	proc    *process
}

// StartBackend starts the nginx backend in dir, with an HTTPS listener
// too when tls is set.
func StartBackend(dir string, tls *TLSFiles) (*Backend, error) {
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return nil, err
	}
	for name, size := range map[string]int{"1k": 1 << 10, "64k": 64 << 10} {
		if err := os.WriteFile(filepath.Join(www, name), []byte(strings.Repeat("w", size)), 0o644); err != nil {
			return nil, err
		}
	}
	p1, err := freePort()
	if err != nil {
		return nil, err
	}
	p2, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &Backend{Addr: fmt.Sprintf("127.0.0.1:%d", p1), H2Addr: fmt.Sprintf("127.0.0.1:%d", p2)}
	tlsListen := ""
	if tls != nil {
		p3, err := freePort()
		if err != nil {
			return nil, err
		}
		b.TLSAddr = fmt.Sprintf("127.0.0.1:%d", p3)
		tlsListen = nginxTLS(b.TLSAddr, tls)
	}
	conf := nginxMain(dir) + fmt.Sprintf(`
    server {
        listen %s backlog=4096;
        listen %s http2 backlog=4096;
%s        root %s;
        location / { try_files $uri /1k; }
    }
}
`, b.Addr, b.H2Addr, tlsListen, www)
	path, err := writeNginxConf(dir, conf)
	if err != nil {
		return nil, err
	}
	b.proc, err = startProcess("backend nginx", nil, "nginx", "-p", dir, "-e", "stderr", "-c", path)
	if err != nil {
		return nil, err
	}
	if err := b.proc.waitListening(b.Addr); err != nil {
		b.proc.stop()
		return nil, err
	}
	return b, nil
}

// Close stops the backend.
func (b *Backend) Close() { b.proc.stop() }

// Direct is the baseline target: the backend without a proxy.
func (b *Backend) Direct(tls bool) *Target {
	if tls {
		return &Target{Name: "direct", Addr: b.TLSAddr, H2Addr: b.H2Addr, TLS: true}
	}
	return &Target{Name: "direct", Addr: b.Addr, H2Addr: b.H2Addr}
}

// nginxTLS is a TLS listen directive with the certificate. nginx 1.22
// offers TLS 1.2 at most unless told otherwise, while HAProxy, Caddy and
// Waygate offer 1.3; a 1.2 resumption skips the key exchange a 1.3 one
// makes, so every target is held to the same protocols.
func nginxTLS(addr string, f *TLSFiles) string {
	return fmt.Sprintf("        listen %s ssl backlog=4096;\n        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_certificate %s;\n        ssl_certificate_key %s;\n", addr, f.Cert, f.Key)
}

// nginxMain is the part of an nginx config shared by the backend and the
// nginx proxy: one worker per core, no access log, keep-alive
// connections that are never closed for their request count (the
// default closes after 1,000 requests, which would make every target
// pay reconnects), and every temp path inside dir. The http block is
// left open for the caller's servers.
func nginxMain(dir string) string {
	t := func(n string) string { return filepath.Join(dir, "tmp", n) }
	return fmt.Sprintf(`daemon off;
worker_processes auto;
worker_rlimit_nofile 65536;
pid %s;
error_log stderr warn;
events { worker_connections 32768; }
http {
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    open_file_cache max=64 inactive=300s;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;
`, filepath.Join(dir, "nginx.pid"), t("body"), t("proxy"), t("fastcgi"), t("uwsgi"), t("scgi"))
}

// writeNginxConf writes dir/nginx.conf and the temp directory its paths
// point into.
func writeNginxConf(dir, conf string) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "nginx.conf")
	return path, writeFile(path, conf)
}
