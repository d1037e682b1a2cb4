package extauthz

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/waygate/waygate/filters"
)

// grpcClient is the connection to an envoy_grpc cluster. gRPC picks an
// endpoint through the gateway's Dialer each time it (re)connects, so
// the cluster's endpoints and load balancer of the current snapshot
// apply.
type grpcClient struct {
	once sync.Once
	conn *grpc.ClientConn
	err  error
}

func (g *grpcClient) client(s *grpcService, d filters.Dialer) (authv3.AuthorizationClient, error) {
	g.once.Do(func() {
		if d == nil {
			g.err = fmt.Errorf("cluster %q: the gateway offers no way to dial clusters", s.cluster)
			return
		}
		g.conn, g.err = grpc.NewClient("passthrough:///"+s.cluster,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithAuthority(s.authority),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return d.Dial(ctx, s.cluster)
			}))
	})
	if g.err != nil {
		return nil, g.err
	}
	return authv3.NewAuthorizationClient(g.conn), nil
}

func (g *grpcClient) close() error {
	if g.conn != nil {
		return g.conn.Close()
	}
	return nil
}

// checkGRPC calls envoy.service.auth.v3.Authorization/Check with the
// request's attributes. An OK status allows and may rewrite upstream
// headers and add client headers; any other status denies, with the
// denied_response's status (403 by default), headers and body; an RPC
// error is a failure.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/service/auth/v3/external_auth.proto
func (c *Config) checkGRPC(ctx context.Context, cl authv3.AuthorizationClient, x *filters.Exchange, body []byte, ctxExt map[string]string) decision {
	s := c.grpc
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	for _, kv := range s.metadata {
		ctx = metadata.AppendToOutgoingContext(ctx, kv[0], kv[1])
	}
	resp, err := cl.Check(ctx, c.checkRequest(x, body, ctxExt))
	if err != nil {
		return decision{verdict: failed, err: err}
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		d := decision{verdict: denied, status: 403}
		dr := resp.GetDeniedResponse()
		if code := dr.GetStatus().GetCode(); code != 0 {
			d.status = int(code)
		}
		d.body = []byte(dr.GetBody())
		for _, h := range dr.GetHeaders() {
			applyOption(&d.deniedHeaders, h)
		}
		return d
	}
	d := decision{verdict: allowed}
	ok := resp.GetOkResponse()
	for _, h := range ok.GetHeaders() {
		if h.GetAppend().GetValue() {
			addHeader(&d.appendHeaders, h.GetHeader().GetKey(), h.GetHeader().GetValue())
		} else {
			addHeader(&d.setHeaders, h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
	}
	d.removeHeaders = ok.GetHeadersToRemove()
	for _, h := range ok.GetResponseHeadersToAdd() {
		applyOption(&d.clientHeaders, h)
	}
	if md := resp.GetDynamicMetadata(); md != nil {
		d.metadata = md.AsMap()
	} else if md := ok.GetDynamicMetadata(); md != nil {
		d.metadata = md.AsMap()
	}
	return d
}

// applyOption adds a HeaderValueOption to h; in ext_authz responses an
// unset append means overwrite.
func applyOption(h *http.Header, o *corev3.HeaderValueOption) {
	if o.GetAppend().GetValue() {
		addHeader(h, o.GetHeader().GetKey(), o.GetHeader().GetValue())
		return
	}
	setHeader(h, o.GetHeader().GetKey(), o.GetHeader().GetValue())
}

// checkRequest builds the CheckRequest attributes as Envoy fills them:
// source and destination addresses, the peer's identity (and its
// certificate when include_peer_certificate), the request head with
// lower-case header names including pseudo-headers, the body when
// buffered, and the route's context extensions.
func (c *Config) checkRequest(x *filters.Exchange, body []byte, ctxExt map[string]string) *authv3.CheckRequest {
	hdrs := make(map[string]string, len(x.Request.Header)+4)
	hdrs[":method"] = x.Request.Method
	hdrs[":path"] = x.Request.Path
	hdrs[":authority"] = x.Request.Authority
	hdrs[":scheme"] = x.Request.Scheme
	for k, vs := range x.Request.Header {
		if c.allowed != nil && !c.allowed.matches(k) {
			continue
		}
		if c.disallowed.matches(k) {
			continue
		}
		hdrs[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	_, query, _ := strings.Cut(x.Request.Path, "?")
	hr := &authv3.AttributeContext_HttpRequest{
		Id:       x.Request.ID,
		Method:   x.Request.Method,
		Headers:  hdrs,
		Path:     x.Request.Path,
		Host:     x.Request.Authority,
		Scheme:   x.Request.Scheme,
		Query:    query,
		Size:     x.Request.ContentLength,
		Protocol: x.Request.Protocol,
	}
	if body != nil {
		if c.body != nil && c.body.packAsBytes {
			hr.RawBody = body
		} else {
			hr.Body = string(body)
		}
	}
	attrs := &authv3.AttributeContext{
		Source:            &authv3.AttributeContext_Peer{Address: socketAddress(connectionPeer(x))},
		Destination:       &authv3.AttributeContext_Peer{Address: socketAddress(x.Downstream.LocalAddr)},
		Request:           &authv3.AttributeContext_Request{Time: timestamppb.Now(), Http: hr},
		ContextExtensions: ctxExt,
	}
	if cs := x.Downstream.TLS; cs != nil {
		attrs.Source.Principal = peerPrincipal(cs)
		if c.includePeerCertificate && len(cs.PeerCertificates) > 0 {
			p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cs.PeerCertificates[0].Raw})
			attrs.Source.Certificate = url.QueryEscape(string(p))
		}
		if c.includeTLSSession {
			attrs.TlsSession = &authv3.AttributeContext_TLSSession{Sni: cs.ServerName}
		}
	}
	if len(c.metadataNamespaces) > 0 {
		mc := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
		for _, ns := range c.metadataNamespaces {
			if m, ok := x.Metadata[ns]; ok {
				if st, err := structpb.NewStruct(m); err == nil {
					mc.FilterMetadata[ns] = st
				}
			}
		}
		attrs.MetadataContext = mc
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

func socketAddress(ap netip.AddrPort) *corev3.Address {
	if !ap.IsValid() {
		return nil
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ap.Addr().Unmap().String(),
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())},
	}}}
}

// peerPrincipal is the peer certificate's URI SAN, else DNS SAN, else
// subject, as Envoy names a TLS peer.
func peerPrincipal(cs *tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	leaf := cs.PeerCertificates[0]
	if len(leaf.URIs) > 0 {
		return leaf.URIs[0].String()
	}
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames[0]
	}
	return leaf.Subject.String()
}

// connectionPeer is the downstream connection's peer (after the PROXY
// protocol), which Envoy reports as the source, not the x-forwarded-for
// client.
func connectionPeer(x *filters.Exchange) netip.AddrPort {
	if a := x.Downstream.SourceAddr; a.IsValid() {
		return a
	}
	return x.Downstream.RemoteAddr
}
