package conformance

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// outcome is what a client observed of one exchange.
type outcome struct {
	status int
	proto  string
	header http.Header
	body   []byte
	err    error
	took   time.Duration
}

// client sends one check's HTTP exchanges to the gateway.
type client struct {
	http   *http.Client
	scheme string
}

// newClient makes the client a check's request asks for: its protocol,
// the scenario's CA to trust, the server name and client certificate to
// present. It keeps up to conns connections open, as fortio's -c
// connections do, and never follows redirects: a redirect is a response
// the scenario checks.
func newClient(r *Request, conns int, ca *pki, mesh *meshCA) (*client, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}
	var protos http.Protocols
	scheme := "http"
	switch r.Protocol {
	case "h2c":
		protos.SetUnencryptedHTTP2(true)
	case "https", "h2":
		scheme = "https"
		cfg, err := clientTLS(r, ca, mesh)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
		if r.Protocol == "h2" {
			protos.SetHTTP2(true)
		} else {
			protos.SetHTTP1(true)
		}
	default:
		protos.SetHTTP1(true)
	}
	tr.Protocols = &protos
	return &client{scheme: scheme, http: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// clientTLS trusts the scenario's CA, sends SNI (default: the Host
// without its port) and presents the client certificate asked for; or
// speaks Istio mTLS with the mesh CA (see Request.MeshIdentity).
func clientTLS(r *Request, ca *pki, mesh *meshCA) (*tls.Config, error) {
	if mesh != nil && (r.MeshIdentity != "" || ca == nil) {
		return mesh.clientTLS(r.MeshIdentity)
	}
	if ca == nil {
		return nil, fmt.Errorf("protocol %s: add certificates or meshCA: true to scenario.yaml so the client has a CA to trust", r.Protocol)
	}
	sni := r.SNI
	if sni == "" {
		sni = r.Host
		if h, _, err := net.SplitHostPort(sni); err == nil {
			sni = h
		}
	}
	cfg := &tls.Config{RootCAs: ca.pool, ServerName: sni}
	if r.ClientCert != "" {
		pair, ok := ca.pairs[r.ClientCert]
		if !ok {
			return nil, fmt.Errorf("clientCert: no certificate named %q", r.ClientCert)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func (c *client) close() { c.http.CloseIdleConnections() }

// do sends one HTTP request to the gateway port and reads the whole
// response.
func (c *client) do(ctx context.Context, r *Request, port int) outcome {
	timeout := time.Duration(r.Timeout)
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, fmt.Sprintf("%s://127.0.0.1:%d%s", c.scheme, port, r.Path), body)
	if err != nil {
		return outcome{err: err}
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	if r.Host != "" {
		req.Host = r.Host
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return outcome{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return outcome{status: resp.StatusCode, proto: resp.Proto, header: resp.Header, body: b, err: err, took: time.Since(start)}
}

// tcpExchange connects to the gateway port, sends one line and reads one
// line back, as `echo hello | nc` does in the tcp-echo task.
func tcpExchange(ctx context.Context, t *TCPExchange, port int) outcome {
	start := time.Now()
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return outcome{err: err, took: time.Since(start)}
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, t.Send+"\n"); err != nil {
		return outcome{err: err, took: time.Since(start)}
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return outcome{err: fmt.Errorf("reading the reply: %w", err), body: []byte(line), took: time.Since(start)}
	}
	return outcome{body: []byte(strings.TrimRight(line, "\r\n")), took: time.Since(start)}
}
