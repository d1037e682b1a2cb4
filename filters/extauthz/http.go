package extauthz

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/waygate/waygate/filters"
)

// maxResponseBody bounds what is read of an authorization response body
// (a denial's body goes to the client).
const maxResponseBody = 1 << 20

// Headers a denial's local reply never copies from the service's
// response: the gateway writes its own framing.
var hopHeaders = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Upgrade": true, "Trailer": true, "Te": true,
}

// Headers Envoy always passes to a client on a denial when
// allowed_client_headers is set.
var alwaysClient = []string{"Path", "Status", "Content-Length", "Www-Authenticate", "Location"}

// checkHTTP asks an HTTP authorization service: the original method, the
// path prefixed with path_prefix, the original host, Authorization and
// the allowed request headers (Envoy always adds Host, Method, Path,
// Content-Length and Authorization to allowed_headers), headers_to_add, and the buffered body when configured. A
// 200 allows; any other status denies; no answer (connection failure,
// timeout) is a failure.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/ext_authz/v3/ext_authz.proto#extensions-filters-http-ext-authz-v3-httpservice
func (c *Config) checkHTTP(ctx context.Context, up filters.Upstream, x *filters.Exchange, body []byte, partial bool) decision {
	s := c.http
	if up == nil {
		return decision{verdict: failed, err: fmt.Errorf("no upstream to reach cluster %q", s.cluster)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, x.Request.Method, "http://"+s.authority+s.pathPrefix+x.Request.Path, bytes.NewReader(body))
	if err != nil {
		return decision{verdict: failed, err: err}
	}
	req.Host = x.Request.Authority
	for k, vs := range x.Request.Header {
		if (k == "Authorization" || c.allowed.matches(k)) && !c.disallowed.matches(k) {
			req.Header[k] = vs
		}
	}
	// Host, method and path travel in the request line; the length is
	// the body's.
	req.Header.Del("Content-Length")
	req.ContentLength = int64(len(body))
	if c.body != nil {
		req.Header.Set("X-Envoy-Auth-Partial-Body", strconv.FormatBool(partial))
	}
	for _, h := range s.headersToAdd {
		req.Header.Set(h[0], h[1])
	}
	resp, err := up.RoundTrip(ctx, s.cluster, req)
	if err != nil {
		return decision{verdict: failed, err: err}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return decision{verdict: failed, err: fmt.Errorf("reading the authorization response: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		d := decision{verdict: denied, status: resp.StatusCode, body: rb}
		for k, vs := range resp.Header {
			if hopHeaders[k] {
				continue
			}
			if s.clientSet && !s.client.matches(k) && !always(k) {
				continue
			}
			for _, v := range vs {
				addHeader(&d.deniedHeaders, k, v)
			}
		}
		return d
	}
	d := decision{verdict: allowed}
	for k, vs := range resp.Header {
		if hopHeaders[k] {
			continue
		}
		if s.upstream.matches(k) {
			for i, v := range vs {
				if i == 0 {
					setHeader(&d.setHeaders, k, v)
				} else {
					addHeader(&d.setHeaders, k, v)
				}
			}
		}
		if s.upstreamAppend.matches(k) {
			for _, v := range vs {
				addHeader(&d.appendHeaders, k, v)
			}
		}
		if s.clientOnSuccess.matches(k) {
			for _, v := range vs {
				addHeader(&d.clientHeaders, k, v)
			}
		}
	}
	return d
}

func always(k string) bool {
	for _, a := range alwaysClient {
		if strings.EqualFold(a, k) {
			return true
		}
	}
	return false
}
