package conformance

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"text/template"
)

// ports maps the names a scenario uses to loopback ports: the backends'
// (known once they listen) and the gateway's (picked free on first use,
// since the gateway binds what the Gateway resource says).
type ports struct {
	mu       sync.Mutex
	backends map[string]int
	gateway  map[string]int
}

// gatewayPort returns the port for a gateway port name, picking a free
// one the first time the name is seen.
func (p *ports) gatewayPort(name string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.gateway[name]; ok {
		return n, nil
	}
	n, err := freePort()
	if err != nil {
		return 0, err
	}
	p.gateway[name] = n
	return n, nil
}

func (p *ports) backendPort(name string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.backends[name]
	if !ok {
		return 0, fmt.Errorf("no backend named %q in scenario.yaml", name)
	}
	return n, nil
}

// render reads an Istio YAML file and replaces its placeholders:
// {{port "reviews-v1"}} and {{gateway_port "http"}}.
func (p *ports) render(file string) ([]byte, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	t, err := template.New(file).Option("missingkey=error").Funcs(template.FuncMap{
		"port":         p.backendPort,
		"gateway_port": p.gatewayPort,
	}).Parse(string(src))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, nil); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the gateway binds it; the window is short and the
// gateway's error would say so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
