package conformance

import (
	"fmt"
	"io"
	"net"

	"github.com/waygate/waygate/conformance/backend"
)

// backends are a scenario's running backends by name.
type backends struct {
	http    map[string]*backend.Server
	closers []io.Closer
}

// startBackends starts every backend of s on a free loopback port and
// records the ports for the YAML placeholders.
func startBackends(s *Scenario, p *ports) (*backends, error) {
	bs := &backends{http: map[string]*backend.Server{}}
	for _, spec := range s.Backends {
		opts := backend.Options{Service: spec.Service, Version: spec.Version, Prefix: spec.Prefix, FailPercent: spec.FailPercent}
		var addr string
		switch spec.Kind {
		case "jwks":
			is, err := startIssuer(spec.Service)
			if err != nil {
				bs.close()
				return nil, fmt.Errorf("backend %s: %w", spec.Name, err)
			}
			bs.closers = append(bs.closers, is)
			p.issuers[spec.Name] = is
			addr = is.addr()
		case "tcp":
			srv, err := backend.StartTCPEcho(opts)
			if err != nil {
				bs.close()
				return nil, fmt.Errorf("backend %s: %w", spec.Name, err)
			}
			bs.closers = append(bs.closers, srv)
			addr = srv.Addr()
		default:
			srv, err := backend.Start(opts)
			if err != nil {
				bs.close()
				return nil, fmt.Errorf("backend %s: %w", spec.Name, err)
			}
			bs.closers = append(bs.closers, srv)
			bs.http[spec.Name] = srv
			addr = srv.Addr()
		}
		_, port, _ := net.SplitHostPort(addr)
		var n int
		fmt.Sscan(port, &n)
		p.backends[spec.Name] = n
	}
	return bs, nil
}

// requests returns how many application requests each HTTP backend has
// received so far.
func (bs *backends) requests() map[string]int64 {
	out := make(map[string]int64, len(bs.http))
	for name, s := range bs.http {
		out[name] = s.Requests()
	}
	return out
}

func (bs *backends) close() {
	for _, c := range bs.closers {
		c.Close()
	}
}
