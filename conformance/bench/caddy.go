package bench

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// startCaddy runs Caddy with a Caddyfile reverse proxy: automatic HTTPS
// off, h2c accepted beside HTTP/1.1, no access log (Caddy's default),
// and as many idle upstream connections kept as nginx keeps (Caddy's
// default of 32 per host would make 64 client connections churn
// upstream connections).
// Its admin endpoint is on a loopback port so `caddy reload` can push
// the configuration again.
func startCaddy(s Setup) (*Target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &Target{Name: "caddy", Addr: fmt.Sprintf("127.0.0.1:%d", port), TLS: s.TLS != nil}
	site, tlsLine, sni := "http", "", ""
	if s.TLS != nil {
		// wrk sends no SNI to an IP address: default_sni picks the
		// site's certificate for it.
		site = "https"
		tlsLine = fmt.Sprintf("    tls %s %s\n", s.TLS.Cert, s.TLS.Key)
		sni = "    default_sni bench.waygate.dev\n"
	}
	t.H2Addr = t.Addr
	var routes strings.Builder
	for i := range s.Routes {
		fmt.Fprintf(&routes, "    handle /r%d/* {\n        reverse_proxy %s {\n%s        }\n    }\n", i, s.Backend, caddyTransport)
	}
	conf := fmt.Sprintf(`{
    admin 127.0.0.1:%d
    auto_https off
%s    servers {
        protocols h1 h2 h2c
    }
}

%s://:%d {
    bind 127.0.0.1
%s%s    handle {
        reverse_proxy %s {
%s        }
    }
}
`, admin, sni, site, port, tlsLine, routes.String(), s.Backend, caddyTransport)
	path := filepath.Join(s.Dir, "Caddyfile")
	if err := writeFile(path, conf); err != nil {
		return nil, err
	}
	env := []string{"XDG_DATA_HOME=" + filepath.Join(s.Dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(s.Dir, "config"), "HOME=" + s.Dir}
	t.proc, err = startProcess("caddy", env, "caddy", "run", "--adapter", "caddyfile", "--config", path)
	if err != nil {
		return nil, err
	}
	if err := t.proc.waitListening(t.Addr); err != nil {
		t.proc.stop()
		return nil, err
	}
	adminAddr := fmt.Sprintf("127.0.0.1:%d", admin)
	t.Reload = func(int) error {
		out, err := exec.Command("caddy", "reload", "--force", "--adapter", "caddyfile", "--config", path, "--address", adminAddr).CombinedOutput()
		if err != nil {
			return fmt.Errorf("caddy reload: %v: %s", err, out)
		}
		return nil
	}
	return t, nil
}

const caddyTransport = `            transport http {
                keepalive 300s
                keepalive_idle_conns 256
                keepalive_idle_conns_per_host 256
            }
`
