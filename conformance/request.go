package conformance

import (
	"bufio"
	"context"
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
	header http.Header
	body   []byte
	err    error
	took   time.Duration
}

// clients send a check's exchanges to the gateway.
type clients struct {
	h1, h2c *http.Client
}

// newClients makes clients that keep up to conns connections open, as
// fortio's -c connections do, and never follow redirects: a redirect is
// a response the scenario checks.
func newClients(conns int) *clients {
	mk := func(h2c bool) *http.Client {
		tr := &http.Transport{
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
		}
		if h2c {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			tr.Protocols = &p
		}
		return &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &clients{h1: mk(false), h2c: mk(true)}
}

func (c *clients) close() {
	c.h1.CloseIdleConnections()
	c.h2c.CloseIdleConnections()
}

// do sends one HTTP request to the gateway port and reads the whole
// response.
func (c *clients) do(ctx context.Context, r *Request, port int) outcome {
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
	req, err := http.NewRequestWithContext(ctx, r.Method, fmt.Sprintf("http://127.0.0.1:%d%s", port, r.Path), body)
	if err != nil {
		return outcome{err: err}
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	if r.Host != "" {
		req.Host = r.Host
	}
	cl := c.h1
	if r.Protocol == "h2c" {
		cl = c.h2c
	}
	start := time.Now()
	resp, err := cl.Do(req)
	if err != nil {
		return outcome{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return outcome{status: resp.StatusCode, header: resp.Header, body: b, err: err, took: time.Since(start)}
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
