package backend

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// controls is what a request asked the backend to do, read from
// x-echo-* headers or the query parameters of the same name. A header
// wins over a query parameter, so a gateway route that adds a header can
// override what a user typed in a URL.
type controls struct {
	status   int           // 0: the usual status
	delay    time.Duration // wait before answering
	reset    bool          // drop the connection instead of answering
	bodySize int64         // -1: the usual body
	headers  [][2]string   // extra response headers, in order
}

// maxBodySize bounds x-echo-body-size so a typo cannot make a backend
// allocate or send gigabytes.
const maxBodySize = 64 << 20

func control(r *http.Request, name string) string {
	if v := r.Header.Get("x-echo-" + name); v != "" {
		return v
	}
	return r.URL.Query().Get(name)
}

// parseControls reads every control of r; the error names the control
// and says what would be valid.
func parseControls(r *http.Request) (controls, error) {
	c := controls{bodySize: -1}
	if v := control(r, "status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 200 || n > 599 {
			return c, fmt.Errorf("x-echo-status %q: want a status code within 200-599", v)
		}
		c.status = n
	}
	if v := control(r, "delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return c, fmt.Errorf("x-echo-delay %q: want a non-negative Go duration such as 250ms or 2s", v)
		}
		c.delay = d
	}
	if v := control(r, "reset"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("x-echo-reset %q: want true or false", v)
		}
		c.reset = b
	}
	if v := control(r, "body-size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > maxBodySize {
			return c, fmt.Errorf("x-echo-body-size %q: want a byte count within 0-%d", v, maxBodySize)
		}
		c.bodySize = n
	}
	values := r.Header.Values("x-echo-header")
	if len(values) == 0 {
		values = r.URL.Query()["header"]
	}
	for _, v := range values {
		name, value, ok := strings.Cut(v, "=")
		name = strings.TrimSpace(name)
		if !ok || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
			return c, fmt.Errorf("x-echo-header %q: want name=value with a valid header name and value", v)
		}
		c.headers = append(c.headers, [2]string{name, strings.TrimSpace(value)})
	}
	return c, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func parsePercent(v string) (int, error) {
	p, err := strconv.Atoi(v)
	if err != nil || p < 0 || p > 100 {
		return 0, fmt.Errorf("percent %q: want an integer within 0-100", v)
	}
	return p, nil
}
