package server

import (
	"context"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/waygate/waygate/gateway/ca"
	"github.com/waygate/waygate/gateway/istio/translate"
)

// The SDS names Istio's agent serves its proxy: the workload certificate
// and the mesh root (https://istio.io/latest/docs/concepts/security/#pki).
// The translator refers to them for ISTIO_MUTUAL, on both sides.
const (
	workloadSecret = "default"
	rootSecret     = "ROOTCA"
)

// identityOf is the identity a proxy's certificate carries: its
// namespace and service account, Istio's ingress gateway account when
// the node names none.
func identityOf(p translate.Proxy) ca.Identity {
	id := ca.Identity{Namespace: p.Namespace, ServiceAccount: p.ServiceAccount}
	if id.Namespace == "" {
		id.Namespace = ca.GatewayIdentity.Namespace
	}
	if id.ServiceAccount == "" {
		id.ServiceAccount = ca.GatewayIdentity.ServiceAccount
	}
	return id
}

// meshSecrets are the proxy's "default" and "ROOTCA" secrets, which
// here travel in the proxy's own snapshot: the control plane plays the
// part of Istio's agent too, so the proxy needs no local SDS server.
// None without a CA.
func (s *Server) meshSecrets(p translate.Proxy) ([]*tlsv3.Secret, error) {
	if s.CA == nil {
		return nil, nil
	}
	cert, err := s.CA.Get(identityOf(p))
	if err != nil {
		return nil, err
	}
	inline := func(b []byte) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
	}
	s.kickRenewal()
	return []*tlsv3.Secret{
		{Name: workloadSecret, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(cert.ChainPEM),
			PrivateKey:       inline(cert.KeyPEM),
		}}},
		{Name: rootSecret, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(s.CA.CA.RootPEM()),
		}}},
	}, nil
}

// kickRenewal wakes the renewal loop, which may be waiting with no
// certificate to renew.
func (s *Server) kickRenewal() {
	select {
	case s.renewKick <- struct{}{}:
	default:
	}
}

// renew pushes connected proxies their renewed certificates when the
// earliest one is due, until ctx is done. Certificates of identities no
// proxy holds any more are forgotten.
func (s *Server) renew(ctx context.Context) {
	for {
		wait := time.Hour
		if next := s.CA.NextRenewal(); !next.IsZero() {
			wait = max(time.Until(next), 10*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.renewKick:
			t.Stop()
			continue
		case <-t.C:
		}
		s.mu.Lock()
		held := map[ca.Identity]bool{}
		for _, n := range s.nodes {
			held[identityOf(n.proxy)] = true
		}
		s.CA.Forget(func(id ca.Identity) bool { return held[id] })
		logged := map[string]bool{}
		for id, n := range s.nodes {
			s.push(id, n.proxy, logged)
		}
		proxies := len(s.nodes)
		s.mu.Unlock()
		s.log.Info("workload certificates renewed", "proxies", proxies)
	}
}
