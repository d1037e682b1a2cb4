package backend

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// Backend is one entry of a fixed demo set: a service version at a
// loopback address that the bundled Istio YAML points at.
type Backend struct {
	Service string // short service name: "reviews"
	Version string // the version label its ServiceEntry endpoint carries
	Addr    string // fixed loopback host:port
	// Prefix, when set, makes it a tcp-echo backend with that prefix
	// instead of an HTTP one.
	Prefix string
}

// TCP reports whether b is a tcp-echo backend.
func (b Backend) TCP() bool { return b.Prefix != "" }

// Options is how Start or StartTCPEcho is called for b.
func (b Backend) Options() Options {
	return Options{Service: b.Service, Version: b.Version, Addr: b.Addr, Prefix: b.Prefix}
}

// BookinfoBackends is the demo set the files under
// deploy/examples/bookinfo and deploy/examples/bookinfo-scenarios point
// at: the Bookinfo services, the httpbin target of the circuit-breaking
// scenario and the two tcp-echo versions of the TCP shifting scenario.
// The ports are fixed because the ServiceEntries name them; a test in
// this package checks the two stay in step. It returns a fresh copy.
func BookinfoBackends() []Backend {
	return []Backend{
		{Service: "productpage", Version: "v1", Addr: "127.0.0.1:19080"},
		{Service: "details", Version: "v1", Addr: "127.0.0.1:19081"},
		{Service: "ratings", Version: "v1", Addr: "127.0.0.1:19082"},
		{Service: "reviews", Version: "v1", Addr: "127.0.0.1:19083"},
		{Service: "reviews", Version: "v2", Addr: "127.0.0.1:19084"},
		{Service: "reviews", Version: "v3", Addr: "127.0.0.1:19085"},
		{Service: "httpbin", Version: "v1", Addr: "127.0.0.1:19086"},
		{Service: "tcp-echo", Version: "v1", Addr: "127.0.0.1:19090", Prefix: "one"},
		{Service: "tcp-echo", Version: "v2", Addr: "127.0.0.1:19091", Prefix: "two"},
	}
}

// StartBookinfo starts every backend of BookinfoBackends in this
// process; stop closes them all.
func StartBookinfo() (stop func(), err error) {
	stop, _, err = StartBackends(BookinfoBackends())
	return stop, err
}

// StartBackends starts each backend and returns, in the same order, the
// address each one listens on (the one asked for, or the one the kernel
// picked for port 0). If one fails to start, those already started are
// closed and the error names the one that failed.
func StartBackends(set []Backend) (stop func(), addrs []string, err error) {
	var closers []io.Closer
	stop = func() {
		for _, c := range closers {
			c.Close()
		}
	}
	for _, b := range set {
		c, addr, err := startOne(b)
		if err != nil {
			stop()
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, nil, fmt.Errorf("demo backend %s %s: %s is taken; stop what listens there: %w", b.Service, b.Version, b.Addr, err)
			}
			return nil, nil, fmt.Errorf("demo backend %s %s: %w", b.Service, b.Version, err)
		}
		closers = append(closers, c)
		addrs = append(addrs, addr)
	}
	return stop, addrs, nil
}

func startOne(b Backend) (io.Closer, string, error) {
	if b.TCP() {
		s, err := StartTCPEcho(b.Options())
		if err != nil {
			return nil, "", err
		}
		return s, s.Addr(), nil
	}
	s, err := Start(b.Options())
	if err != nil {
		return nil, "", err
	}
	return s, s.Addr(), nil
}
