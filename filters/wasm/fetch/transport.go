package fetch

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// transports returns the base transport for verified hosts and its
// copy that skips TLS verification, for insecure ones. Both refuse to
// dial link-local and cloud metadata addresses.
func transports(base *http.Transport) (secure, insecure *http.Transport) {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	secure = base.Clone()
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	secure.DialContext = guardedDial(d)
	secure.DialTLSContext = nil
	insecure = secure.Clone()
	if insecure.TLSClientConfig == nil {
		insecure.TLSClientConfig = &tls.Config{}
	}
	insecure.TLSClientConfig.InsecureSkipVerify = true // only for hosts listed as insecure
	return secure, insecure
}

// transport is the transport to reach host with.
func (f *Fetcher) transport(host string) *http.Transport {
	if f.insecureHost(host) {
		return f.insecure
	}
	return f.secure
}

// metadataAddrs are cloud instance metadata services outside the
// link-local ranges.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

// blocked says why a module may not be fetched from ip: a plugin URL
// or a registry's token realm chosen by whoever writes the config must
// not reach the instance metadata service, whose credentials would be
// sent back as the answer. Loopback and private addresses stay
// allowed: in-cluster registries live there.
func blocked(ip netip.Addr) error {
	ip = ip.Unmap()
	if ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() {
		return fmt.Errorf("address %s is link-local", ip)
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return fmt.Errorf("address %s is a cloud metadata service", ip)
		}
	}
	return nil
}

// guardedDial dials with d once the resolved address passes blocked,
// so redirects and registry token realms are checked too.
func guardedDial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		var last error
		for _, ip := range ips {
			if err := blocked(ip); err != nil {
				last = err
				continue
			}
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			last = err
		}
		if last == nil {
			last = fmt.Errorf("no address for %s", host)
		}
		return nil, last
	}
}
