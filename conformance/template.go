package conformance

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"text/template"

	"github.com/waygate/waygate/conformance/backend"
)

// ports maps the names a scenario uses to loopback ports: the backends'
// (known once they listen) and the gateway's (picked free on first use,
// since the gateway binds what the Gateway resource says); and the JWT
// issuers among the backends, for the token and jwks placeholders.
type ports struct {
	mu       sync.Mutex
	backends map[string]int
	gateway  map[string]int
	issuers  map[string]*issuer
	pki      *pki
	mesh     *meshCA
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

func (p *ports) issuer(name string) (*issuer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	is, ok := p.issuers[name]
	if !ok {
		return nil, fmt.Errorf("no backend of kind jwks named %q in scenario.yaml", name)
	}
	return is, nil
}

// token signs a JWT with the named issuer's key.
func (p *ports) token(name string, claims ...string) (string, error) {
	is, err := p.issuer(name)
	if err != nil {
		return "", err
	}
	return is.sign(claims...)
}

// jwks is the named issuer's key set as a JSON string, for
// RequestAuthentication's inline jwks field.
func (p *ports) jwks(name string) (string, error) {
	is, err := p.issuer(name)
	if err != nil {
		return "", err
	}
	return string(is.jwks), nil
}

// render reads an Istio YAML file and replaces its placeholders:
// {{port "reviews-v1"}}, {{gateway_port "http"}}, {{jwks "issuer"}},
// {{cert "name"}}, {{key "name"}}, {{ca}}, and the mesh CA's
// {{mesh_cert "ns/sa"}}, {{mesh_key "ns/sa"}} and {{mesh_ca}}.
func (p *ports) render(file string) ([]byte, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	out, err := p.expand(file, string(src))
	return []byte(out), err
}

// expand replaces the placeholders of one text.
func (p *ports) expand(name, text string) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"port":         p.backendPort,
		"gateway_port": p.gatewayPort,
		"token":        p.token,
		"jwks":         p.jwks,
		"cert":         func(name string) (string, error) { return p.pki.file(name, false) },
		"key":          func(name string) (string, error) { return p.pki.file(name, true) },
		"ca": func() (string, error) {
			if p.pki == nil {
				return "", fmt.Errorf("no certificates in scenario.yaml")
			}
			return p.pki.caFile, nil
		},
		"mesh_cert": func(id string) (string, error) { return p.mesh.file(id, false) },
		"mesh_key":  func(id string) (string, error) { return p.mesh.file(id, true) },
		"mesh_ca":   func() (string, error) { return p.mesh.root() },
	}).Parse(text)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, nil); err != nil {
		return "", err
	}
	return out.String(), nil
}

// freePort is a port for one of the gateway's listeners (see
// backend.FreePort for why it is not the kernel's pick).
func freePort() (int, error) { return backend.FreePort() }
