package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// bookinfoBackends are the backends `bookinfo: true` adds, named as the
// shared YAML under scenarios/_bookinfo refers to them.
var bookinfoBackends = []BackendSpec{
	{Name: "productpage-v1", Service: "productpage", Version: "v1"},
	{Name: "details-v1", Service: "details", Version: "v1"},
	{Name: "ratings-v1", Service: "ratings", Version: "v1"},
	{Name: "reviews-v1", Service: "reviews", Version: "v1"},
	{Name: "reviews-v2", Service: "reviews", Version: "v2"},
	{Name: "reviews-v3", Service: "reviews", Version: "v3"},
}

// validate fills defaults and rejects what the runner could not run,
// naming the field so the author knows what to fix.
func (s *Scenario) validate() error {
	if s.Bookinfo {
		s.Backends = append(append([]BackendSpec(nil), bookinfoBackends...), s.Backends...)
	}
	names := map[string]bool{}
	for i := range s.Backends {
		b := &s.Backends[i]
		if b.Service == "" {
			return fmt.Errorf("backends[%d].service: required", i)
		}
		if b.Name == "" {
			b.Name = b.Service + "-" + b.Version
		}
		if names[b.Name] {
			return fmt.Errorf("backends[%d].name %q: used twice; give one of them another name", i, b.Name)
		}
		names[b.Name] = true
		switch b.Kind {
		case "", "http":
			b.Kind = "http"
		case "tcp":
			if b.Prefix == "" && b.Version == "" {
				return fmt.Errorf("backends[%d]: a tcp backend needs a prefix or a version", i)
			}
		case "jwks":
		default:
			return fmt.Errorf("backends[%d].kind %q: want http, tcp or jwks", i, b.Kind)
		}
		if b.FailPercent < 0 || b.FailPercent > 100 {
			return fmt.Errorf("backends[%d].failPercent %d: want 0-100", i, b.FailPercent)
		}
	}
	certs := map[string]bool{}
	for i, c := range s.Certificates {
		switch {
		case c.Name == "" || certs[c.Name]:
			return fmt.Errorf("certificates[%d].name %q: want a unique name", i, c.Name)
		case !c.Client && len(c.Hosts) == 0:
			return fmt.Errorf("certificates[%d].hosts: a server certificate needs the hosts it serves", i)
		}
		certs[c.Name] = true
	}
	if len(s.Steps) == 0 {
		return fmt.Errorf("steps: at least one step is needed")
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		if st.Name == "" {
			st.Name = fmt.Sprintf("step %d", i+1)
		}
		if len(st.Apply) == 0 {
			return fmt.Errorf("steps[%d].apply: list the Istio YAML files of the step", i)
		}
		seen := map[string]bool{}
		for _, f := range st.Apply {
			if _, err := os.Stat(filepath.Join(s.Dir, f)); err != nil {
				return fmt.Errorf("steps[%d].apply: %w", i, err)
			}
			if seen[filepath.Base(f)] {
				return fmt.Errorf("steps[%d].apply %q: two files share the name %s", i, f, filepath.Base(f))
			}
			seen[filepath.Base(f)] = true
		}
		for j := range st.Checks {
			if err := st.Checks[j].validate(names, certs, s.MeshCA); err != nil {
				return fmt.Errorf("steps[%d].checks[%d]: %w", i, j, err)
			}
		}
	}
	return nil
}

func (c *Check) validate(backends, certs map[string]bool, meshCA bool) error {
	kinds := 0
	if c.Request != nil {
		kinds++
	}
	if c.TCP != nil {
		kinds++
	}
	if c.Pause > 0 {
		if kinds != 0 || c.Expect != nil || len(c.Shares) > 0 {
			return fmt.Errorf("pause stands alone: no request, tcp, expect or shares beside it")
		}
		if c.Name == "" {
			c.Name = "pause " + time.Duration(c.Pause).String()
		}
		return nil
	}
	if kinds != 1 {
		return fmt.Errorf("want exactly one of request, tcp or pause")
	}
	if c.Count == 0 {
		c.Count = 1
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.Count < 1 || c.Concurrency < 1 || c.Concurrency > c.Count {
		return fmt.Errorf("count %d, concurrency %d: want count >= concurrency >= 1", c.Count, c.Concurrency)
	}
	if c.Expect == nil && len(c.Shares) == 0 && len(c.BackendRequests) == 0 {
		return fmt.Errorf("nothing is checked: add expect, shares or backendRequests")
	}
	for i, sh := range c.Shares {
		if (sh.Percent == nil) == (sh.Count == nil) {
			return fmt.Errorf("shares[%d]: want exactly one of percent or count", i)
		}
	}
	for name := range c.BackendRequests {
		if !backends[name] {
			return fmt.Errorf("backendRequests: no backend named %q", name)
		}
	}
	if r := c.Request; r != nil {
		switch r.Protocol {
		case "", "h1", "h2c", "https", "h2":
		default:
			return fmt.Errorf("request.protocol %q: want h1, h2c, https or h2", r.Protocol)
		}
		if r.ClientCert != "" && !certs[r.ClientCert] {
			return fmt.Errorf("request.clientCert: no certificate named %q", r.ClientCert)
		}
		if id := r.MeshIdentity; id != "" {
			switch {
			case !meshCA:
				return fmt.Errorf("request.meshIdentity: add meshCA: true to scenario.yaml")
			case r.ClientCert != "":
				return fmt.Errorf("request: want clientCert or meshIdentity, not both")
			case r.Protocol != "https" && r.Protocol != "h2":
				return fmt.Errorf("request.meshIdentity: mTLS needs protocol https or h2")
			}
			if err := checkIdentity(id); err != nil {
				return fmt.Errorf("request.meshIdentity: %w", err)
			}
		}
		if r.Path == "" {
			r.Path = "/"
		}
		if r.Method == "" {
			r.Method = "GET"
		}
		if r.Port == "" {
			r.Port = "http"
		}
	}
	if t := c.TCP; t != nil && t.Port == "" {
		t.Port = "tcp"
	}
	if c.Name == "" {
		if c.Request != nil {
			c.Name = c.Request.Method + " " + c.Request.Path
		} else {
			c.Name = "tcp " + c.TCP.Port
		}
	}
	return nil
}
